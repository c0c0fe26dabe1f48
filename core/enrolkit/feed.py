"""The change feed: every enrolment and role change from the event log, after an opaque cursor.

A poller must miss nothing and see nothing twice, so a change committed later must never sort
before a cursor already handed out. Log ids alone do not promise that on PostgreSQL: a sequence
hands out ids when rows are written, and a transaction that wrote id 10 may commit after one that
wrote id 11 was read. So each log row carries the id of the transaction that wrote it (``xact``,
PostgreSQL's 64-bit ``pg_current_xact_id()``), and the feed

* hands out only rows whose transaction is older than the oldest one still running
  (``pg_snapshot_xmin(pg_current_snapshot())``): those transactions have all ended, and every
  transaction still running or yet to start has an id at least that large;
* orders by ``(xact, id)``, so a later page's rows always sort after an earlier cursor.

The price is latency, not writes: a long transaction holds the feed back until it ends. The other
choice, an advisory lock taken before each log write and held to commit, would serialise every
change on the site, and every writer (plugins' too) would have to take it.

SQLite has one writer at a time (``BEGIN IMMEDIATE`` holds the write lock from the first statement
to commit), so ids already follow commit order there; ``xact`` stays 0.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from sqlalchemy import select, text, tuple_

from .errors import EnrolkitError
from .integrations import DEFAULT_LIMIT, EVENTS, MAX_LIMIT
from .models import Course, LogEntry, User
from .site import Site

_VERSION = "v1"


class CursorError(EnrolkitError):
    """A cursor this feed did not hand out."""


def encode(xact: int, row_id: int) -> str:
    raw = f"{_VERSION}:{xact}:{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str | None) -> tuple[int, int]:
    """``(xact, id)`` of a cursor; the start of the feed for none."""
    if not cursor:
        return (-1, 0)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        version, xact, row_id = raw.split(":")
        if version != _VERSION:
            raise ValueError(version)
        return int(xact), int(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise CursorError(
            f"cursor {cursor[:40]!r} was not handed out by this feed; "
            "start without one or pass the 'next' cursor of the last page"
        ) from None


@dataclass(frozen=True)
class Page:
    changes: list[dict]
    #: Where the next request starts: the last change's cursor, or the one asked for.
    next: str


def changes(site: Site, after: str | None = None, limit: int = DEFAULT_LIMIT) -> Page:
    """The changes after ``after``, oldest first, at most ``limit``."""
    if not 1 <= limit <= MAX_LIMIT:
        raise EnrolkitError(f"limit must be 1 to {MAX_LIMIT}, got {limit}")
    position = decode(after)
    query = (
        select(LogEntry, User.username, Course.shortname)
        .outerjoin(User, User.id == LogEntry.user_id)
        .outerjoin(Course, Course.id == LogEntry.course_id)
        .where(
            LogEntry.event.in_(EVENTS),
            tuple_(LogEntry.xact, LogEntry.id) > tuple_(*position),
        )
        .order_by(LogEntry.xact, LogEntry.id)
        .limit(limit)
    )
    if site.session.get_bind().dialect.name == "postgresql":
        horizon = text("pg_snapshot_xmin(pg_current_snapshot())::text::bigint")
        query = query.where(LogEntry.xact < horizon)
    rows = site.session.execute(query).all()
    found = [
        {
            "cursor": encode(entry.xact, entry.id),
            "time": entry.time,
            "event": entry.event,
            "user_id": entry.user_id,
            "username": username,
            "course_id": entry.course_id,
            "course": shortname,
            "instance_id": entry.instance_id,
            "component": entry.component,
            "origin": entry.origin,
            "reason": entry.reason,
        }
        for entry, username, shortname in rows
    ]
    return Page(found, found[-1]["cursor"] if found else (after or encode(-1, 0)))
