"""What keeps writers on many nodes from stepping on each other: one writer per enrolment
instance at a time, and a bounded retry of a transaction the database gave up on.

Two web nodes and a cron runner may all plan for the same instance at once (a cohort sync while
the API adds a member; the same "Enrol me" sent twice). The engine diffs a plan's source against
the enrolments in SQL, so two plans interleaving would each write a state computed from what they
read before the other committed. :func:`lock_instances` serialises them: on PostgreSQL a
transaction-level advisory lock per instance, taken before the plan reads its source, so the plan
that waits reads (READ COMMITTED: every statement sees what committed before it) everything the
first one wrote. On SQLite a write transaction (``Site.atomic``) begins IMMEDIATE and holds the
database's one write lock from its first statement, which serialises every writer already.

A deadlock or a serialisation failure can still end a transaction (locks taken in another order
by nested plans, a row lock against an advisory lock). :func:`retrying` runs a unit of work again
a few times; only then does the error reach the caller, who answers "busy, try again" (API 503
with Retry-After, CLI exit 75).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from .site import Site

T = TypeVar("T")

#: First key of enrolkit's two-key advisory locks on enrolment instances ("ek"), so they never
#: meet another application's locks on the same database.
INSTANCE_LOCKS = 0x656B
#: Attempts of a unit of work the database ended with a deadlock or serialisation failure.
ATTEMPTS = 4
#: Seconds a client is told to wait before retrying a request that stayed busy (Retry-After).
RETRY_AFTER = 1


def lock_instances(session: Session, instance_ids: Iterable[int]) -> None:
    """Wait until this transaction is the only writer of these enrolment instances.

    Call it inside the write transaction, before reading anything the plan depends on; the
    locks last until the transaction ends (taking one again is free). Ids are taken in ascending
    order, so two transactions locking overlapping sets never wait for each other in a circle.
    On SQLite the write transaction already holds the database's write lock: nothing to do.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    ids = sorted(set(instance_ids))
    if not ids:
        return
    # One statement for the whole batch; PostgreSQL evaluates a volatile function of the select
    # list after the ORDER BY, so the locks are taken one by one in ascending order.
    session.connection().exec_driver_sql(
        "SELECT pg_advisory_xact_lock(%(space)s, t.id)"
        " FROM unnest(CAST(%(ids)s AS integer[])) AS t(id) ORDER BY t.id",
        {"space": INSTANCE_LOCKS, "ids": ids},
    )


#: SQLSTATEs of a transaction PostgreSQL ended so that another could go on: serialization_failure
#: and deadlock_detected. (SQLite's "database is locked" comes after its 30 s busy timeout:
#: waiting again would only make the caller wait longer.)
RETRYABLE = frozenset({"40001", "40P01"})


def transient(exc: BaseException | None) -> bool:
    """A deadlock or a serialisation failure anywhere in the chain of ``exc``: running the same
    work again may succeed."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in RETRYABLE:
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def retrying(site: Site, work: Callable[[], T], *, attempts: int = ATTEMPTS) -> T:
    """``work()``, which opens its own write transaction (``site.atomic``), run again after a
    short random pause when the database ended that transaction with a deadlock or a
    serialisation failure, at most ``attempts`` times in all.

    Inside a transaction that is already open only the whole outer transaction can be redone, so
    ``work`` runs once there and the outermost caller's retry does the rest.
    """
    if site.in_atomic():
        return work()
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except Exception as exc:
            if attempt == attempts or not transient(exc):
                raise
            time.sleep(random.uniform(0.01, 0.05) * attempt)
    raise AssertionError("unreachable")


__all__ = ["ATTEMPTS", "RETRY_AFTER", "lock_instances", "retrying", "transient"]
