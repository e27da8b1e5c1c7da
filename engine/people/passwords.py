"""Passwords after NIST SP 800-63B: long enough, not a common or guessable one, no composition rules.

A password is the only factor of a local login, so it needs at least MIN_LENGTH characters (800-63B rev. 4,
3.1.1.2) and up to MAX_LENGTH are accepted, spaces and any Unicode included. It is refused when it is on
zxcvbn's list of 30,000 common passwords, or when zxcvbn (a maintained estimator, Dropbox's) finds it built
from the person's own name or username, repeats, sequences or dictionary words that make it quick to guess.
Nothing asks for digits, symbols or capitals, and nothing expires a password on a schedule.
"""

from __future__ import annotations

import functools
import unicodedata

from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_LENGTH = 15
MAX_LENGTH = 256
# zxcvbn's score 0-4: 3 is "safely unguessable: moderate protection from an offline slow-hash scenario".
MIN_SCORE = 3
# What zxcvbn looks at: the first characters are enough to judge a long password, and bound its work.
JUDGED_LENGTH = 100
COMMON = frozenset(FREQUENCY_LISTS["passwords"])


class Hashing:
    """How passwords are hashed: werkzeug's scrypt; tests may set a cheaper method."""

    method = "scrypt"


def normalised(password: str) -> str:
    """The password as it is hashed and judged: NFKC, so the same characters typed on another keyboard match."""
    return unicodedata.normalize("NFKC", password)


def problems(password: str, *, username: str = "", name: str = "") -> list[str]:
    """What is wrong with a new password, in words a person can act on; empty when it may be used."""
    password = normalised(password or "")
    if len(password) < MIN_LENGTH:
        return [f"A password needs at least {MIN_LENGTH} characters: a few words you will remember work well."]
    if len(password) > MAX_LENGTH:
        return [f"A password may have at most {MAX_LENGTH} characters."]
    if password.lower() in COMMON:
        return ["That password is on the list of the most common ones; choose another."]
    if _uses_own_name(password, username, name):
        return ["Do not use your name or your username in your password."]
    inputs = [part for part in (username, name, *name.split(), "civicflow") if part]
    verdict = zxcvbn(password[:JUDGED_LENGTH], user_inputs=inputs)
    if verdict["score"] < MIN_SCORE:
        advice = verdict["feedback"]["warning"] or "It would be quick to guess."
        return [f"That password is too easy to guess. {advice}".strip()]
    return []


def _letters(text: str) -> str:
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def _uses_own_name(password: str, username: str, name: str) -> bool:
    """Whether the password holds the person's username or a part of their name (four letters or more)."""
    letters = _letters(password)
    own = {_letters(username), _letters(name), *(_letters(part) for part in name.replace("_", " ").split())}
    return any(len(word) >= 4 and word in letters for word in own)


def hash_password(password: str) -> str:
    """The stored hash of a password."""
    return generate_password_hash(normalised(password), method=Hashing.method)


def matches(stored_hash: str, password: str) -> bool:
    """Whether the password is the one of the stored hash."""
    return check_password_hash(stored_hash, normalised(password))


@functools.cache
def _stand_in(method: str) -> str:
    return generate_password_hash("civicflow-timing-stand-in", method=method)


def check_nobody(password: str) -> None:
    """The work of checking a password against a real user's hash, for a username with no usable account.

    An unknown or deactivated username then costs what a wrong password does, so the time of an answer
    does not tell which usernames exist.
    """
    check_password_hash(_stand_in(Hashing.method), normalised(password))
