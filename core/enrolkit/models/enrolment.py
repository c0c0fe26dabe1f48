"""Enrolment instances, user enrolments and the plans held by the mass-removal guard."""

from __future__ import annotations

from sqlalchemy import (
    DDL,
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    event,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import NEVER_REUSED, Base, Timestamp

ACTIVE, SUSPENDED = 0, 1


class EnrolInstance(Base):
    """A method attached to a course (Moodle's ``enrol`` table)."""

    __tablename__ = "enrol_instances"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    method: Mapped[str] = mapped_column(String(50))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    name: Mapped[str] = mapped_column(String(255), default="")
    role_id: Mapped[int | None] = mapped_column(ForeignKey("roles.id"), default=None)
    sortorder: Mapped[int] = mapped_column(Integer, default=0)
    #: The method's own settings, validated by its marshmallow schema.
    settings: Mapped[dict] = mapped_column(JSON, default=dict)
    timecreated: Mapped[int] = mapped_column(Timestamp, default=0)
    timemodified: Mapped[int] = mapped_column(Timestamp, default=0)
    __table_args__ = (Index("ix_enrol_instances_method", "method", "enabled"), NEVER_REUSED)

    @property
    def component(self) -> str:
        return f"enrol_{self.method}"


class UserEnrolment(Base):
    __tablename__ = "user_enrolments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("enrol_instances.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    status: Mapped[int] = mapped_column(Integer, default=ACTIVE)
    timestart: Mapped[int] = mapped_column(Timestamp, default=0)
    timeend: Mapped[int] = mapped_column(Timestamp, default=0)
    timecreated: Mapped[int] = mapped_column(Timestamp, default=0)
    timemodified: Mapped[int] = mapped_column(Timestamp, default=0)
    __table_args__ = (UniqueConstraint("instance_id", "user_id"),)


class HeldPlan(Base):
    """A plan the mass-removal guard stopped, waiting for an admin to approve or discard it."""

    __tablename__ = "held_plans"
    __table_args__ = NEVER_REUSED
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("enrol_instances.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(20), default="held", index=True)
    origin: Mapped[str] = mapped_column(String(20), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    #: Counts of the diff (enrol, update, suspend, unenrol, ...) and the why of the hold.
    summary: Mapped[dict] = mapped_column(JSON, default=dict)
    #: The plan itself, serialised: mode and rows. Approving replays exactly this.
    payload: Mapped[dict] = mapped_column(JSON, default=dict)
    timecreated: Mapped[int] = mapped_column(Timestamp, default=0)
    timedecided: Mapped[int] = mapped_column(Timestamp, default=0)
    decided_by: Mapped[str] = mapped_column(String(100), default="")


class LogEntry(Base):
    """The event log: every change, with who or what made it and why."""

    __tablename__ = "log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[int] = mapped_column(Timestamp, index=True)
    event: Mapped[str] = mapped_column(String(100))
    component: Mapped[str] = mapped_column(String(100))
    course_id: Mapped[int | None] = mapped_column(Integer, default=None)
    user_id: Mapped[int | None] = mapped_column(Integer, default=None)
    instance_id: Mapped[int | None] = mapped_column(Integer, default=None)
    origin: Mapped[str] = mapped_column(String(20), default="")
    reason: Mapped[str] = mapped_column(Text, default="")
    #: The writing transaction's id on PostgreSQL (0 elsewhere): the change feed hands out only
    #: rows of transactions older than every one still running, so none commits behind a cursor.
    #: Filled by the database default below, never by the application.
    xact: Mapped[int] = mapped_column(BigInteger, server_default="0")
    __table_args__ = (
        Index("ix_log_xact", "xact", "id"),
        Index("ix_log_component_event", "component", "event"),
        Index("ix_log_course", "course_id"),
        Index("ix_log_user", "user_id"),
        NEVER_REUSED,
    )


#: PostgreSQL stamps each log row with its transaction id (``pg_current_xact_id``, 64 bits, never
#: wraps). The migration that adds the column sets the same default.
LOG_XACT_DEFAULT = (
    "ALTER TABLE log ALTER COLUMN xact SET DEFAULT (pg_current_xact_id()::text::bigint)"
)
event.listen(
    LogEntry.__table__, "after_create", DDL(LOG_XACT_DEFAULT).execute_if(dialect="postgresql")
)
