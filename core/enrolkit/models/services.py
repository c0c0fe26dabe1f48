"""Tables of the core services: scheduled tasks, pending actions, the mail outbox, API tokens."""

from __future__ import annotations

from sqlalchemy import Boolean, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, StoredText, Timestamp


class ScheduledTask(Base):
    __tablename__ = "scheduled_tasks"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    component: Mapped[str] = mapped_column(String(100), default="core")
    schedule: Mapped[str] = mapped_column(String(100))
    default_schedule: Mapped[str] = mapped_column(String(100))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    last_run: Mapped[int] = mapped_column(Timestamp, default=0)
    next_run: Mapped[int] = mapped_column(Timestamp, default=0)
    last_duration: Mapped[float] = mapped_column(default=0.0)
    #: The last run's one-line result, a :class:`~enrolkit.texts.Text` shown in the reader's
    #: language ("ok", or "failed: ..." when it failed).
    last_result: Mapped[str] = mapped_column(StoredText, default="")
    #: Who holds the lock ("host:pid:nonce") and until when; an expired lock is free.
    lock_owner: Mapped[str] = mapped_column(String(200), default="")
    lock_until: Mapped[int] = mapped_column(Timestamp, default=0)


class PendingAction(Base):
    """A future-dated change (enrol or unenrol at ``due``) that a core task applies when due."""

    __tablename__ = "pending_actions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    due: Mapped[int] = mapped_column(Timestamp)
    action: Mapped[str] = mapped_column(String(20))
    method: Mapped[str] = mapped_column(String(50))
    instance_id: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[int] = mapped_column(Integer)
    role_id: Mapped[int | None] = mapped_column(Integer, default=None)
    timestart: Mapped[int] = mapped_column(Timestamp, default=0)
    timeend: Mapped[int] = mapped_column(Timestamp, default=0)
    reason: Mapped[str] = mapped_column(Text, default="")
    origin: Mapped[str] = mapped_column(String(20), default="")
    #: Same key = the same intended change: a later one replaces an earlier one still pending.
    key: Mapped[str] = mapped_column(String(255))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    timecreated: Mapped[int] = mapped_column(Timestamp, default=0)
    timeapplied: Mapped[int] = mapped_column(Timestamp, default=0)
    __table_args__ = (
        Index("ix_pending_actions_due", "status", "due"),
        Index("ix_pending_actions_key", "key", "status"),
    )


class MailMessage(Base):
    __tablename__ = "mail_outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    to: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    html: Mapped[str] = mapped_column(Text, default="")
    #: queued, sent, failed (gave up after the last retry)
    status: Mapped[str] = mapped_column(String(20), default="queued", index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[int] = mapped_column(Timestamp, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    #: One message per real state change: the sender names the change, a repeat is ignored.
    dedupe_key: Mapped[str | None] = mapped_column(String(255), default=None)
    created: Mapped[int] = mapped_column(Timestamp, default=0)
    sent: Mapped[int] = mapped_column(Timestamp, default=0)
    #: A message still to be rendered: a user-written template and its variables as JSON. The
    #: delivery task renders it (then clears both), never the transaction that queued it.
    template: Mapped[str | None] = mapped_column(Text, default=None)
    variables: Mapped[str | None] = mapped_column(Text, default=None)
    __table_args__ = (UniqueConstraint("dedupe_key"),)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    scope: Mapped[str] = mapped_column(String(10), default="read")
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created: Mapped[int] = mapped_column(Timestamp, default=0)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)


class RateLimit(Base):
    """Uses of a costly action per key in the current fixed window (e.g. template previews
    per user). One row per key, counted by one conditional upsert, so parallel requests on any
    process or node cannot all pass: see :mod:`enrolkit.throttle`."""

    __tablename__ = "rate_limits"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    window_start: Mapped[int] = mapped_column(Timestamp, default=0)
