"""Secrets at rest: investigative profiles' credentials, encrypted with a key derived from the secret key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def _fernet(secret_key: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"civicflow credentials").derive(
        secret_key.encode()
    )
    return Fernet(base64.urlsafe_b64encode(key))


def encrypt_credentials(secret_key: str, username: str, password: str) -> str:
    """The credentials as an encrypted token (text)."""
    plain = json.dumps({"username": username, "password": password}).encode()
    return _fernet(secret_key).encrypt(plain).decode()


def decrypt_credentials(secret_key: str, token: str | bytes) -> dict:
    """The credentials back from their token."""
    raw = token if isinstance(token, bytes) else token.encode()
    return json.loads(_fernet(secret_key).decrypt(raw))


def fingerprint(secret_key: str, purpose: str, value: str) -> str:
    """A keyed hash of a value, to check uniqueness without storing it in the clear."""
    return hmac.new(secret_key.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()
