"""Settings read from the environment (names fixed by docs/api.md)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, time
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from limits import parse_many

from engine.errors import Invalid
from engine.people.roles import COMMUNICATIONS_MANAGER, GRANTABLE_ROLES

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

REPO_ROOT = Path(__file__).resolve().parent.parent


def _instance_path() -> Path:
    return Path(os.environ.get("CIVICFLOW_INSTANCE_PATH", REPO_ROOT / "instance")).resolve()


def _secret_key(instance: Path) -> str:
    """The configured secret, or one generated once and kept in the instance folder (never in the repo)."""
    configured = os.environ.get("CIVICFLOW_SECRET_KEY")
    if configured:
        return configured
    path = instance / "secret_key"
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


# Business days each review may take (settings: CIVICFLOW_DEADLINES="appeal_response=7,dispute_response=15").
DEFAULT_DEADLINES = MappingProxyType(
    {
        "department_head_review": 5,
        "communications_review": 5,
        "appeal_response": 10,
        "dispute_acknowledgement": 1,
        "attorney_consultation": 10,
        "dispute_response": 20,
    }
)


def _flag(name: str, value: str) -> bool:
    if value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if value.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise Invalid("A setting is not valid.", {name: [f'"{value}" is not yes or no (use 1 or 0).']})


def _clock_time(name: str, value: str) -> time:
    try:
        return time.fromisoformat(value.strip())
    except ValueError:
        raise Invalid("A setting is not valid.", {name: [f'"{value}" is not a time of day like 08:00.']})


def _dates(name: str, value: str) -> frozenset[date]:
    days = set()
    for part in filter(None, (p.strip() for p in value.split(","))):
        try:
            days.add(date.fromisoformat(part))
        except ValueError:
            raise Invalid("A setting is not valid.", {name: [f'"{part}" is not a date like 2026-12-24.']})
    return frozenset(days)


def _deadlines(name: str, value: str) -> MappingProxyType[str, int]:
    days = dict(DEFAULT_DEADLINES)
    for part in filter(None, (p.strip() for p in value.split(","))):
        kind, _, count = part.partition("=")
        kind = kind.strip()
        if kind not in DEFAULT_DEADLINES:
            known = ", ".join(DEFAULT_DEADLINES)
            raise Invalid("A setting is not valid.", {name: [f'"{kind}" is not a deadline; known: {known}.']})
        if not count.strip().isdigit() or not 1 <= int(count) <= 250:
            raise Invalid(
                "A setting is not valid.",
                {name: [f'"{part}": the business days must be a whole number from 1 to 250.']},
            )
        days[kind] = int(count)
    return MappingProxyType(days)


def _business_hours(name: str, value: str) -> tuple[time, time]:
    start, _, end = value.partition("-")
    opens, closes = _clock_time(name, start), _clock_time(name, end or "?")
    if opens >= closes:
        raise Invalid("A setting is not valid.", {name: [f'"{value}": the day must open before it closes.']})
    return opens, closes


def _rate_limit(name: str, value: str) -> str:
    try:
        parse_many(value)
    except ValueError:
        raise Invalid(
            "A setting is not valid.", {name: [f'"{value}" is not a rate limit like "10 per minute;40 per day".']}
        )
    return value.strip()


def _zone(name: str, value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid("A setting is not valid.", {name: [f'"{value}" is not a time zone like America/Chicago.']})
    return value


@dataclass(frozen=True)
class Settings:
    """Everything the engine, web app, scheduler and CLI are configured with."""

    database_url: str
    secret_key: str = field(repr=False)
    instance_path: Path
    workflows_dir: Path = REPO_ROOT / "workflows"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    mail_from: str = "civicflow@localhost"
    communications_manager_title: str = "Marketing and Communications Manager"
    token_lifetime_hours: int = 24 * 30
    # Room for one screenshot of max_attachment_bytes plus its multipart framing.
    max_request_bytes: int = 6 * 1024 * 1024
    max_attachment_bytes: int = 5 * 1024 * 1024
    # Session cookies only over HTTPS; on by default, off for the embedded demo on http://127.0.0.1.
    secure_cookies: bool = True
    # Where staff open civicflow: the links in reminders, escalations and digests.
    base_url: str = "http://127.0.0.1:5000"
    # Time: the City's zone and business hours, its calendar (Minnesota's legal holidays, with the two a
    # political subdivision chooses, plus days it closes or works), and how long each review may take.
    timezone: str = "America/Chicago"
    day_starts: time = time(8, 0)
    day_ends: time = time(16, 30)
    friday_after_thanksgiving: bool = True
    indigenous_peoples_day: bool = False
    closed_days: frozenset[date] = frozenset()
    open_days: frozenset[date] = frozenset()
    deadlines: MappingProxyType[str, int] = field(default_factory=lambda: DEFAULT_DEADLINES)
    reminder_days_before: int = 1
    # Who hears of an overdue Communications Manager task (a role code; the City Administrator by default).
    communications_escalation_role: str = "city_administrator"
    # When the daily digest of open and overdue tasks goes out, on business days, in the City's time.
    digest_time: time = time(7, 0)
    # The public pages' limits per client (address): submissions (the forms and the API together), and
    # status lookups. The syntax of Flask-Limiter: "10 per minute;40 per day".
    public_submission_limit: str = "10 per minute;40 per day"
    public_lookup_limit: str = "60 per minute"
    # Sign-in attempts (web/login_limits.py), counted before the password is checked: per account from one
    # address (growing waits), per address whatever the account, and per account from anywhere.
    login_account_address_limit: str = "5 per minute;10 per 15 minutes;30 per day"
    login_address_limit: str = "30 per minute;200 per day"
    login_account_limit: str = "50 per 15 minutes;200 per day"
    # Reverse proxies in front of civicflow whose X-Forwarded-For to trust (0: clients connect directly).
    # Without it behind a proxy, every member of the public would share the proxy's address and its limit.
    proxy_count: int = 0
    # The computing time one engine step's diagram expressions may use (engine/diagrams/budget.py).
    step_cpu_seconds: float = 1.0
    # Single sign-on with OpenID Connect (web/sso.py, engine/people/sso.py): on when the issuer is set. The client
    # secret comes from the environment only. sso_groups maps a directory group to what it gives in civicflow:
    # a role code, "department:<code>" or "head:<code>" (CIVICFLOW_SSO_GROUPS, read by _sso_groups).
    sso_issuer: str | None = None
    sso_client_id: str | None = None
    sso_client_secret: str | None = field(default=None, repr=False)
    sso_provider_name: str = "single sign-on"
    sso_scopes: str = "openid profile email"
    sso_groups: MappingProxyType[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))
    sso_groups_claim: str = "groups"
    sso_username_claim: str = "preferred_username"
    sso_email_claim: str = "email"
    sso_name_claim: str = "name"
    # "all": everyone may log in with a civicflow password; "admins-only": only administrators (a break-glass
    # login when the directory is down), everyone else signs in through the directory.
    local_passwords: str = "all"

    @property
    def sso_enabled(self) -> bool:
        """Whether single sign-on is configured (its settings are checked together by _sso_settings)."""
        return self.sso_issuer is not None

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        """Build settings from CIVICFLOW_* variables; keyword overrides win (tests, CLI options)."""
        instance = Path(overrides.pop("instance_path", None) or _instance_path())
        values: dict[str, Any] = {
            "instance_path": instance,
            "database_url": os.environ.get("CIVICFLOW_DATABASE_URL") or f"sqlite:///{instance / 'civicflow.sqlite3'}",
            "smtp_host": os.environ.get("CIVICFLOW_SMTP_HOST", "localhost"),
            "smtp_port": int(os.environ.get("CIVICFLOW_SMTP_PORT", "25")),
            "mail_from": os.environ.get("CIVICFLOW_MAIL_FROM", "civicflow@localhost"),
            "communications_manager_title": os.environ.get(
                "CIVICFLOW_COMMUNICATIONS_MANAGER_TITLE", "Marketing and Communications Manager"
            ),
        }
        if "CIVICFLOW_SECURE_COOKIES" in os.environ:
            values["secure_cookies"] = os.environ["CIVICFLOW_SECURE_COOKIES"].lower() in ("1", "true", "yes")
        values.update(_time_settings(os.environ))
        values.update(_web_settings(os.environ))
        values.update(_sso_settings(os.environ))
        if os.environ.get("CIVICFLOW_WORKFLOWS_DIR"):
            values["workflows_dir"] = Path(os.environ["CIVICFLOW_WORKFLOWS_DIR"])
        values.update(overrides)
        if "secret_key" not in values:
            values["secret_key"] = _secret_key(instance)
        return cls(**values)


def settings_of(session: Session) -> Settings:
    """The settings a session was opened with (`factory(info={"settings": settings})`: web/db.py, the CLI, the
    scheduler).

    Only for what reaches the settings through nothing but its session: a procedure's letters and forms, which
    the request services call as `(session, ...)`. Anything its caller can hand the settings to takes them.
    """
    return session.info["settings"]


# Settings read by one reader each: environment variable -> (setting, reader). A reader takes the variable's name
# (for its message) and its value, and returns the checked value or raises Invalid.
_Readers = dict[str, tuple[str, Callable[[str, str], Any]]]

_CALENDAR_SETTINGS: _Readers = {
    "CIVICFLOW_TIMEZONE": ("timezone", _zone),
    "CIVICFLOW_FRIDAY_AFTER_THANKSGIVING": ("friday_after_thanksgiving", _flag),
    "CIVICFLOW_INDIGENOUS_PEOPLES_DAY": ("indigenous_peoples_day", _flag),
    "CIVICFLOW_CLOSED_DAYS": ("closed_days", _dates),
    "CIVICFLOW_OPEN_DAYS": ("open_days", _dates),
    "CIVICFLOW_DEADLINES": ("deadlines", _deadlines),
    "CIVICFLOW_DIGEST_TIME": ("digest_time", _clock_time),
}


def _reminder_days_before(name: str, value: str) -> int:
    value = value.strip()
    if not value.isdigit() or not 1 <= int(value) <= 20:
        raise Invalid("A setting is not valid.", {name: [f'"{value}" is not a whole number from 1 to 20.']})
    return int(value)


def _step_cpu_seconds(name: str, value: str) -> float:
    try:
        seconds = float(value.strip())
    except ValueError:
        seconds = -1.0
    if not 0.05 <= seconds <= 30:
        raise Invalid("A setting is not valid.", {name: [f'"{value}" is not a number of seconds from 0.05 to 30.']})
    return seconds


def _escalation_role(name: str, value: str) -> str:
    role = value.strip()
    if role not in GRANTABLE_ROLES or role == COMMUNICATIONS_MANAGER:
        known = ", ".join(r for r in GRANTABLE_ROLES if r != COMMUNICATIONS_MANAGER)
        raise Invalid("A setting is not valid.", {name: [f'"{role}" is not a role; use one of {known}.']})
    return role


def _proxy_count(name: str, value: str) -> int:
    value = value.strip()
    if not value.isdigit() or int(value) > 5:
        raise Invalid("A setting is not valid.", {name: [f'"{value}" is not a whole number from 0 to 5.']})
    return int(value)


def _base_url(name: str, value: str) -> str:
    return value.strip().rstrip("/")


_ESCALATION_SETTINGS: _Readers = {
    "CIVICFLOW_REMINDER_DAYS_BEFORE": ("reminder_days_before", _reminder_days_before),
    "CIVICFLOW_COMMUNICATIONS_ESCALATION_ROLE": ("communications_escalation_role", _escalation_role),
}

_WEB_SETTINGS: _Readers = {
    "CIVICFLOW_PUBLIC_SUBMISSION_LIMIT": ("public_submission_limit", _rate_limit),
    "CIVICFLOW_PUBLIC_LOOKUP_LIMIT": ("public_lookup_limit", _rate_limit),
    "CIVICFLOW_LOGIN_ACCOUNT_ADDRESS_LIMIT": ("login_account_address_limit", _rate_limit),
    "CIVICFLOW_LOGIN_ADDRESS_LIMIT": ("login_address_limit", _rate_limit),
    "CIVICFLOW_LOGIN_ACCOUNT_LIMIT": ("login_account_limit", _rate_limit),
    "CIVICFLOW_PROXY_COUNT": ("proxy_count", _proxy_count),
    "CIVICFLOW_BASE_URL": ("base_url", _base_url),
    "CIVICFLOW_STEP_CPU_SECONDS": ("step_cpu_seconds", _step_cpu_seconds),
}


def _read(env: Mapping[str, str], readers: _Readers) -> dict[str, Any]:
    """The settings of a table of readers whose variables are set (not empty) in the environment, checked."""
    return {name: read(variable, env[variable]) for variable, (name, read) in readers.items() if env.get(variable)}


def _time_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The clock, calendar and deadline settings present in the environment, checked."""
    values = _read(env, _CALENDAR_SETTINGS)
    if env.get("CIVICFLOW_BUSINESS_HOURS"):
        values["day_starts"], values["day_ends"] = _business_hours(
            "CIVICFLOW_BUSINESS_HOURS", env["CIVICFLOW_BUSINESS_HOURS"]
        )
    values.update(_read(env, _ESCALATION_SETTINGS))
    return values


def _web_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The public pages' limits, the proxies to trust and the base URL present in the environment, checked."""
    return _read(env, _WEB_SETTINGS)


LOCAL_PASSWORDS = ("all", "admins-only")


def _issuer(name: str, value: str) -> str:
    issuer = value.strip().rstrip("/")
    loopback = issuer.startswith(("http://127.0.0.1:", "http://localhost:"))
    if not (issuer.startswith("https://") or loopback) or " " in issuer:
        raise Invalid(
            "A setting is not valid.",
            {name: [f'"{value}" is not an https URL like https://login.microsoftonline.com/<tenant>/v2.0.']},
        )
    return issuer


def _text(name: str, value: str) -> str:
    return value.strip()


def _claim(name: str, value: str) -> str:
    claim = value.strip()
    if not claim or len(claim) > 100 or any(c.isspace() for c in claim):
        raise Invalid("A setting is not valid.", {name: [f'"{value}" is not a claim name like groups.']})
    return claim


def _local_passwords(name: str, value: str) -> str:
    choice = value.strip().lower()
    if choice not in LOCAL_PASSWORDS:
        raise Invalid("A setting is not valid.", {name: [f'"{value}" is not one of {", ".join(LOCAL_PASSWORDS)}.']})
    return choice


def _sso_grant(name: str, group: str, grant: str) -> str:
    """One thing a group gives: a grantable role code, "department:<code>" or "head:<code>"."""
    kind, colon, code = grant.partition(":")
    if colon:
        if kind not in ("department", "head") or not code.strip():
            raise Invalid(
                "A setting is not valid.",
                {name: [f'"{group}={grant}": use a role code, department:<code> or head:<code>.']},
            )
        return f"{kind}:{code.strip().lower()}"
    if grant not in GRANTABLE_ROLES:
        hint = " (a department head is named with head:<code>)" if grant == "department_head" else ""
        raise Invalid(
            "A setting is not valid.",
            {name: [f'"{group}={grant}": "{grant}" is not a role{hint}; roles: {", ".join(GRANTABLE_ROLES)}.']},
        )
    return grant


def _sso_groups(name: str, value: str) -> MappingProxyType[str, tuple[str, ...]]:
    """`group=grant, group=grant, ...`: a group may be named more than once; see Settings.sso_groups."""
    grants: dict[str, list[str]] = {}
    for part in filter(None, (p.strip() for p in value.split(","))):
        group, equals, grant = part.rpartition("=")
        if not equals or not group.strip() or not grant.strip():
            raise Invalid(
                "A setting is not valid.",
                {name: [f'"{part}" is not group=grant, like civicflow-admins=admin or parks=department:parks.']},
            )
        grants.setdefault(group.strip(), []).append(_sso_grant(name, group.strip(), grant.strip()))
    return MappingProxyType({group: tuple(dict.fromkeys(given)) for group, given in grants.items()})


_SSO_SETTINGS: _Readers = {
    "CIVICFLOW_SSO_ISSUER": ("sso_issuer", _issuer),
    "CIVICFLOW_SSO_CLIENT_ID": ("sso_client_id", _text),
    "CIVICFLOW_SSO_CLIENT_SECRET": ("sso_client_secret", _text),
    "CIVICFLOW_SSO_PROVIDER_NAME": ("sso_provider_name", _text),
    "CIVICFLOW_SSO_SCOPES": ("sso_scopes", _text),
    "CIVICFLOW_SSO_GROUPS": ("sso_groups", _sso_groups),
    "CIVICFLOW_SSO_GROUPS_CLAIM": ("sso_groups_claim", _claim),
    "CIVICFLOW_SSO_USERNAME_CLAIM": ("sso_username_claim", _claim),
    "CIVICFLOW_SSO_EMAIL_CLAIM": ("sso_email_claim", _claim),
    "CIVICFLOW_SSO_NAME_CLAIM": ("sso_name_claim", _claim),
    "CIVICFLOW_LOCAL_PASSWORDS": ("local_passwords", _local_passwords),
}


def _sso_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The single sign-on settings present in the environment, checked; the issuer, client id and secret together."""
    values = _read(env, _SSO_SETTINGS)
    required = ("CIVICFLOW_SSO_ISSUER", "CIVICFLOW_SSO_CLIENT_ID", "CIVICFLOW_SSO_CLIENT_SECRET")
    present = [variable for variable in required if env.get(variable, "").strip()]
    if present and len(present) < len(required):
        missing = [variable for variable in required if variable not in present]
        raise Invalid(
            "A setting is not valid.",
            {
                variable: ["Single sign-on needs the issuer, the client id and the client secret."]
                for variable in missing
            },
        )
    if values.get("local_passwords") == "admins-only" and not present:
        raise Invalid(
            "A setting is not valid.",
            {"CIVICFLOW_LOCAL_PASSWORDS": ["admins-only needs single sign-on (CIVICFLOW_SSO_ISSUER and its client)."]},
        )
    if "openid" not in values.get("sso_scopes", "openid").split():
        raise Invalid("A setting is not valid.", {"CIVICFLOW_SSO_SCOPES": ['The scopes must include "openid".']})
    return values
