"""The records civicflow keeps: people, departments, procedures, their instances, tasks, timers and audit."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column, relationship

from engine.db.statuses import AccountStatus, IncidentStatus, InstanceStatus, MailStatus, TaskStatus
from engine.time.clock import utcnow


class Base(DeclarativeBase):
    """Declarative base; every table of civicflow derives from it."""

    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON}


class Department(Base):
    """A City department (code as in docs/api.md), with its head."""

    __tablename__ = "department"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    head_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", use_alter=True))

    head: Mapped[User | None] = relationship(foreign_keys=[head_id], post_update=True)


class User(Base):
    """A City employee or agent who logs in; every user may act as a requester."""

    __tablename__ = "user_account"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(255))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Bumped when the person signs out, changes their password or is deactivated: every session cookie
    # carries the generation it was signed in under, and an older one opens nothing (web/auth.py).
    session_generation: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # Who the person is in the City's directory, for single sign-on: "<issuer> <sub>" (engine/people/sso.py).
    sso_subject: Mapped[str | None] = mapped_column(String(600), unique=True)

    department: Mapped[Department | None] = relationship(foreign_keys=[department_id])
    role_rows: Mapped[list[UserRole]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    @property
    def roles(self) -> set[str]:
        """The role codes granted to this user (department headship is derived, not granted)."""
        return {row.role for row in self.role_rows}


class PasswordReset(Base):
    """A password reset link sent by mail: only its token's hash is kept; it works once, until it expires."""

    __tablename__ = "password_reset"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    used_at: Mapped[datetime | None] = mapped_column(DateTime)


class UserRole(Base):
    """A role code granted to a user."""

    __tablename__ = "user_role"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(64), primary_key=True)


class ApiToken(Base):
    """A bearer token for the JSON API; only its sha256 is stored."""

    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime)

    user: Mapped[User] = relationship()


class ProcessPublication(Base):
    """Each time a version was made the one new requests use: who published which version, and when.

    The latest publication of a procedure names its version in use (`ProcessVersion.published`).
    """

    __tablename__ = "process_publication"
    __table_args__ = (Index("ix_publication_key", "key", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100))
    model_id: Mapped[int] = mapped_column(ForeignKey("process_model.id"))
    published_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    published_at: Mapped[datetime] = mapped_column(DateTime)

    model: Mapped[ProcessVersion] = relationship(back_populates="publications")
    published_by: Mapped[User | None] = relationship()


class ProcessVersion(Base):
    """One version of a procedure's diagram, identified by the sha256 of its XML and numbered per procedure.

    Versions are never changed or deleted: running requests stay on the version they started with.
    """

    __tablename__ = "process_model"
    __table_args__ = (UniqueConstraint("key", "version_hash"), UniqueConstraint("key", "number"))

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), index=True)
    number: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(200))
    version_hash: Mapped[str] = mapped_column(String(64))
    bpmn_xml: Mapped[str] = mapped_column(Text)
    # Where it came from: "shipped" (workflows/ of this release), or an administrator's "editor", "upload" or "api".
    source: Mapped[str] = mapped_column(String(20), default="shipped")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # In use for new requests: the version of its procedure's latest publication (one indexed lookup a row).
    published: Mapped[bool] = column_property(
        func.coalesce(
            select(ProcessPublication.model_id)
            .where(ProcessPublication.key == key)
            .order_by(ProcessPublication.id.desc())
            .limit(1)
            .correlate_except(ProcessPublication)
            .scalar_subquery()
            == id,
            false(),
        )
    )

    created_by: Mapped[User | None] = relationship()
    # Oldest first: the last one says when and by whom this version was last published.
    publications: Mapped[list[ProcessPublication]] = relationship(
        back_populates="model", order_by=ProcessPublication.id
    )

    @property
    def last_publication(self) -> ProcessPublication | None:
        """When and by whom this version was last made the one in use (None: never)."""
        return self.publications[-1] if self.publications else None


class ProcessDraft(Base):
    """An administrator's unpublished edit of a procedure's diagram: one per procedure, shared by administrators."""

    __tablename__ = "process_draft"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    bpmn_xml: Mapped[str] = mapped_column(Text)
    # Bumped on every save; a save that names an older revision is a conflict (two administrators at once).
    revision: Mapped[int] = mapped_column(Integer)
    based_on_id: Mapped[int | None] = mapped_column(ForeignKey("process_model.id"))
    source: Mapped[str] = mapped_column(String(20))
    updated_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    updated_at: Mapped[datetime] = mapped_column(DateTime)

    based_on: Mapped[ProcessVersion | None] = relationship()
    updated_by: Mapped[User] = relationship()


class ProcessInstance(Base):
    """A running or finished procedure: its SpiffWorkflow state (without the spec) and what it is about."""

    __tablename__ = "process_instance"
    __table_args__ = (Index("ix_instance_started_by", "started_by_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    process_key: Mapped[str] = mapped_column(String(100), index=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("process_model.id"))
    version_hash: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20), default=InstanceStatus.RUNNING, index=True)
    outcome: Mapped[str | None] = mapped_column(String(40))
    restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    # None for a request a member of the public filed through the public pages (see PublicRequest).
    started_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # SpiffWorkflow's serialized workflow, without the spec (engine.diagrams.serialization).
    workflow_state: Mapped[str] = mapped_column("state", Text)
    version: Mapped[int] = mapped_column(Integer, nullable=False)

    started_by: Mapped[User | None] = relationship(foreign_keys=[started_by_id])
    department: Mapped[Department | None] = relationship()
    model: Mapped[ProcessVersion] = relationship()

    # Optimistic locking: every UPDATE says "WHERE version = <what I read>"; zero rows is a conflict.
    __mapper_args__ = {"version_id_col": version}


class Incident(Base):
    """A step of a diagram that failed: the request is held there until an administrator retries or cancels it."""

    __tablename__ = "incident"
    __table_args__ = (Index("ix_incident_status", "status", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    # The version the request followed when the step failed.
    model_id: Mapped[int] = mapped_column(ForeignKey("process_model.id"))
    # SpiffWorkflow's task that failed (a retry runs it again), and its BPMN element.
    task_id: Mapped[str | None] = mapped_column(String(36))
    element_id: Mapped[str | None] = mapped_column(String(200))
    element_name: Mapped[str | None] = mapped_column(String(300))
    # What triggered the step: started, completed (a task), timer, retried.
    during: Mapped[str] = mapped_column(String(20))
    message: Mapped[str] = mapped_column(Text)
    # The names of the task data at the failing step (never the values: they may not be public).
    data_names: Mapped[list[Any]] = mapped_column(JSON, default=list)
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    status: Mapped[str] = mapped_column(String(20), default=IncidentStatus.OPEN)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime)
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # How it was resolved: retried (the request moved on) or cancelled (with the reason).
    resolution: Mapped[str | None] = mapped_column(String(20))
    reason: Mapped[str | None] = mapped_column(Text)

    instance: Mapped[ProcessInstance] = relationship()
    model: Mapped[ProcessVersion] = relationship()
    resolved_by: Mapped[User | None] = relationship(foreign_keys=[resolved_by_id])


_POOL = f"state = '{TaskStatus.OPEN}' AND assignee_id IS NULL"
_ASSIGNED = f"state = '{TaskStatus.OPEN}' AND assignee_id IS NOT NULL"


class Task(Base):
    """A user task, mirrored out of the workflow state so the inbox is one indexed query."""

    __tablename__ = "task"
    __table_args__ = (
        # The pool of claimable tasks and the claimed ones, each its own partial index: the inbox and its
        # count are index searches whatever the number of requests (bench/inbox.py).
        Index("ix_task_pool", "role", "department_id", postgresql_where=text(_POOL), sqlite_where=text(_POOL)),
        Index(
            "ix_task_assigned",
            "assignee_id",
            "created_at",
            "id",
            postgresql_where=text(_ASSIGNED),
            sqlite_where=text(_ASSIGNED),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    # The BPMN element id of the user task (the column keeps its first name).
    element_id: Mapped[str] = mapped_column("spec_name", String(200))
    name: Mapped[str] = mapped_column(String(300))
    form_key: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(64))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    status: Mapped[str] = mapped_column("state", String(20), default=TaskStatus.OPEN)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    due_at: Mapped[datetime | None] = mapped_column(DateTime)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime)
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # A Social Media Manager task belongs to the managers of one account (e.g. restoring a comment).
    account_id: Mapped[int | None] = mapped_column(ForeignKey("account.id"))

    instance: Mapped[ProcessInstance] = relationship()
    department: Mapped[Department | None] = relationship()
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])


class Timer(Base):
    """A waiting timer event, mirrored so the scheduler asks the database what is due."""

    __tablename__ = "timer"
    __table_args__ = (
        Index(
            "ix_timer_waiting_due",
            "due_at",
            postgresql_where=text("fired_at IS NULL"),
            sqlite_where=text("fired_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    # The BPMN element id of the timer event (the column keeps its first name).
    element_id: Mapped[str] = mapped_column("spec_name", String(200))
    due_at: Mapped[datetime] = mapped_column(DateTime)
    fired_at: Mapped[datetime | None] = mapped_column(DateTime)


class AuditEvent(Base):
    """One appended, hash-chained record of who did what, when, with which written words."""

    __tablename__ = "audit_event"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"), index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    actor: Mapped[str] = mapped_column(String(64))
    actor_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str | None] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(40))
    task_id: Mapped[str | None] = mapped_column(String(36))
    task: Mapped[str | None] = mapped_column(String(300))
    decision: Mapped[str | None] = mapped_column(String(40))
    comment: Mapped[str | None] = mapped_column(Text)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class Account(Base):
    """A City social media account in the registry (the policy's Scope)."""

    __tablename__ = "account"

    id: Mapped[int] = mapped_column(primary_key=True)
    platform: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str | None] = mapped_column(String(500), unique=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    status: Mapped[str] = mapped_column(String(20), default=AccountStatus.ACTIVE)
    marked_as_city: Mapped[bool] = mapped_column(Boolean, default=False)
    links_official_site: Mapped[bool] = mapped_column(Boolean, default=False)
    public_notice_linked: Mapped[bool] = mapped_column(Boolean, default=False)
    investigative: Mapped[bool] = mapped_column(Boolean, default=False)
    credentials: Mapped[bytes | None] = mapped_column(LargeBinary)
    username_fingerprint: Mapped[str | None] = mapped_column(String(64), unique=True)
    password_fingerprint: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_by_instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    department: Mapped[Department] = relationship()
    managers: Mapped[list[AccountManager]] = relationship(
        cascade="all, delete-orphan", lazy="selectin", order_by="AccountManager.id"
    )


class AccountManager(Base):
    """A social media manager of an account, with who approved it and when."""

    __tablename__ = "account_manager"

    id: Mapped[int] = mapped_column(primary_key=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("account.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    approved_by: Mapped[str] = mapped_column(String(200))
    approved_at: Mapped[datetime] = mapped_column(DateTime)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"))
    removed_at: Mapped[datetime | None] = mapped_column(DateTime)

    user: Mapped[User] = relationship(lazy="joined")


class Blob(Base):
    """Uploaded bytes, kept exactly as received and addressed by their sha256 (evidence is never altered)."""

    __tablename__ = "blob"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Attachment(Base):
    """One upload: who sent which verified image, and the request that uses it."""

    __tablename__ = "attachment"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("blob.sha256"), index=True)
    content_type: Mapped[str] = mapped_column(String(40))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(200))
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    uploaded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"), index=True)

    uploaded_by: Mapped[User] = relationship()


_PENDING = f"status = '{MailStatus.PENDING}'"
# Letters with a deadline (the dispute's acknowledgement) not yet sent nor escalated: what the timer pass checks.
_UNDELIVERED_BY = f"deliver_by IS NOT NULL AND escalated_at IS NULL AND status <> '{MailStatus.SENT}'"


class OutboxMail(Base):
    """A letter (a procedure's, a reminder, an escalation, a digest) to send, written in the same transaction as the
    change that caused it."""

    __tablename__ = "outbox_mail"
    __table_args__ = (
        Index("ix_outbox_pending_due", "next_attempt_at", postgresql_where=text(_PENDING), sqlite_where=text(_PENDING)),
        Index(
            "ix_outbox_deliver_by",
            "deliver_by",
            postgresql_where=text(_UNDELIVERED_BY),
            sqlite_where=text(_UNDELIVERED_BY),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"), index=True)
    letter: Mapped[str] = mapped_column(String(100))
    recipients: Mapped[list[Any]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(String(300))
    body: Mapped[str] = mapped_column(Text)
    attachment_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    status: Mapped[str] = mapped_column(String(20), default=MailStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # A promise about this letter (acknowledge a dispute within a business day): sent by then, or escalated.
    deliver_by: Mapped[datetime | None] = mapped_column(DateTime)
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime)
    # A letter to a postal address (the name and address lines, as the window envelope shows them): printed as a
    # PDF and mailed by staff, never sent by the mail server (engine/mail/postal.py).
    postal_address: Mapped[str | None] = mapped_column(Text)

    @property
    def failure_words(self) -> str:
        """Why a letter was not delivered, in plain words for staff (the server's own reply is for administrators,
        on the undelivered letters page and in the logs)."""
        return (
            "Not delivered: the mail server refused this letter, and administrators see it under Undelivered letters. "
            "The letter must reach its recipient another way."
        )


class Digest(Base):
    """That a person's daily digest of open and overdue tasks was written for a day (never twice)."""

    __tablename__ = "digest"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    sent_at: Mapped[datetime] = mapped_column(DateTime)
    open_tasks: Mapped[int] = mapped_column(Integer)
    overdue_tasks: Mapped[int] = mapped_column(Integer)


class PublicRequest(Base):
    """An appeal or dispute a member of the public filed through the public pages, found by its tracking code.

    Only the sha256 of the code is kept: the code itself is shown once, e-mailed in the receipt, and is the
    unguessable key of the public status page.
    """

    __tablename__ = "public_request"

    id: Mapped[int] = mapped_column(primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), unique=True)
    kind: Mapped[str] = mapped_column(String(20))
    code_hash: Mapped[str] = mapped_column(String(64), unique=True)
    received_at: Mapped[datetime] = mapped_column(DateTime)

    instance: Mapped[ProcessInstance] = relationship()


class PublicNotice(Base):
    """One version of the City's public notice (the page its accounts link to); the newest is in force."""

    __tablename__ = "public_notice"

    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    changed_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    changed_at: Mapped[datetime] = mapped_column(DateTime)

    changed_by: Mapped[User | None] = relationship()


class RateLimit(Base):
    """A per-client counter of the public pages' rate limits (shared by every web worker, expiring)."""

    __tablename__ = "rate_limit"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)
    # Seconds since the epoch (the clock the `limits` library's windows use).
    expires_at: Mapped[float] = mapped_column(Float, index=True)
