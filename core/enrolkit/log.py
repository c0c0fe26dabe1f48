"""Writing and reading the event log."""

from __future__ import annotations

from sqlalchemy import select

from .models import Course, LogEntry, User
from .site import Site


def record(
    site: Site,
    event: str,
    component: str,
    *,
    course_id: int | None = None,
    user_id: int | None = None,
    instance_id: int | None = None,
    reason: str = "",
) -> None:
    site.session.add(
        LogEntry(
            time=site.now(),
            event=event,
            component=component,
            course_id=course_id,
            user_id=user_id,
            instance_id=instance_id,
            origin=site.origin,
            reason=reason,
        )
    )


def query(
    site: Site,
    *,
    component=None,
    event=None,
    course_id=None,
    user_id=None,
    since=None,
    until=None,
    limit: int = 1000,
):
    """Log rows, newest first, with the username and course shortname joined in."""
    stmt = (
        select(LogEntry, User.username, Course.shortname)
        .outerjoin(User, User.id == LogEntry.user_id)
        .outerjoin(Course, Course.id == LogEntry.course_id)
        .order_by(LogEntry.id.desc())
        .limit(limit)
    )
    if component:
        stmt = stmt.where(LogEntry.component == component)
    if event:
        stmt = stmt.where(LogEntry.event == event)
    if course_id is not None:
        stmt = stmt.where(LogEntry.course_id == course_id)
    if user_id is not None:
        stmt = stmt.where(LogEntry.user_id == user_id)
    if since:
        stmt = stmt.where(LogEntry.time >= since)
    if until:
        stmt = stmt.where(LogEntry.time < until)
    return site.session.execute(stmt).all()
