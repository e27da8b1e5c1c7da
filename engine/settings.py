"""Settings read from the environment (names fixed by API.md)."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

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

    @classmethod
    def from_env(cls, **overrides) -> Settings:
        """Build settings from CIVICFLOW_* variables; keyword overrides win (tests, CLI options)."""
        instance = Path(overrides.pop("instance_path", None) or _instance_path())
        values = {
            "instance_path": instance,
            "database_url": os.environ.get("CIVICFLOW_DATABASE_URL")
            or f"sqlite:///{instance / 'civicflow.sqlite3'}",
            "smtp_host": os.environ.get("CIVICFLOW_SMTP_HOST", "localhost"),
            "smtp_port": int(os.environ.get("CIVICFLOW_SMTP_PORT", "25")),
            "mail_from": os.environ.get("CIVICFLOW_MAIL_FROM", "civicflow@localhost"),
            "communications_manager_title": os.environ.get(
                "CIVICFLOW_COMMUNICATIONS_MANAGER_TITLE", "Marketing and Communications Manager"
            ),
        }
        if "CIVICFLOW_SECURE_COOKIES" in os.environ:
            values["secure_cookies"] = os.environ["CIVICFLOW_SECURE_COOKIES"].lower() in ("1", "true", "yes")
        if os.environ.get("CIVICFLOW_WORKFLOWS_DIR"):
            values["workflows_dir"] = Path(os.environ["CIVICFLOW_WORKFLOWS_DIR"])
        values.update(overrides)
        if "secret_key" not in values:
            values["secret_key"] = _secret_key(instance)
        return cls(**values)
