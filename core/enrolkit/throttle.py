"""A fixed-window rate limit per key, counted in the database (``rate_limits``).

For actions that cost real work whoever asks, such as rendering a user-written template in a
preview. One conditional upsert counts a use or refuses it: the database locks the row
(PostgreSQL) or itself (SQLite) for the statement and re-checks its ``WHERE`` on the latest row,
so parallel requests on any process or node sharing the database cannot all read the same count
and pass. A window that has ended starts afresh.
"""

from __future__ import annotations

from sqlalchemy import case, delete, select
from sqlalchemy.dialects import postgresql, sqlite

from .models import RateLimit
from .site import Site

_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


def take(site: Site, key: str, *, limit: int, window: int) -> int:
    """Count one use of ``key``, at most ``limit`` in ``window`` seconds. Returns 0 when the
    use is allowed (and committed), else the seconds until the window ends (at least 1)."""
    now = site.now()
    table = RateLimit.__table__
    statement = _INSERTS[site.session.get_bind().dialect.name](table).values(
        key=key, hits=1, window_start=now
    )
    ended = statement.excluded.window_start - window >= table.c.window_start
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.key],
        set_={
            "hits": case((ended, 1), else_=table.c.hits + 1),
            "window_start": case(
                (ended, statement.excluded.window_start), else_=table.c.window_start
            ),
        },
        where=ended | (table.c.hits < limit),
    ).returning(table.c.hits)
    with site.atomic():
        if site.session.execute(statement).first() is not None:
            return 0
        started = site.session.scalar(select(RateLimit.window_start).where(RateLimit.key == key))
    return max(1, (started or now) + window - now)


def forget(site: Site, key: str, *, window: int) -> None:
    """Start ``key`` afresh (a successful login clears its failures), dropping on the way the
    keys whose window has ended, so the table holds the current windows only."""
    with site.atomic():
        site.session.execute(
            delete(RateLimit).where(
                (RateLimit.key == key) | (RateLimit.window_start <= site.now() - window)
            )
        )
