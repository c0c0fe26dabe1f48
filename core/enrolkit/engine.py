"""The engine: plan -> diff -> guard -> apply -> log -> notify. The only writer of enrolments.

A method describes what it wants as a :class:`Plan`, either

* a **desired state** (``desired``): every user who should be enrolled in the instance, with role,
  dates, status and group, as a SQL selection (or rows). Whoever is enrolled and not selected gets
  the removal action. Roles and groups the instance owns are made to match exactly. Or
* **explicit changes** (``changes``): enrol, suspend, unenrol, remove (the removal action),
  unassign a role or leave a group, for the users named; nobody else is touched.

The engine loads the plan into temporary tables, computes the difference with SQL, checks the
mass-removal guard, writes in sets inside one transaction, logs every change and fires the change
hooks. Dry-run computes the same difference and writes nothing.

Many plans (one per instance) go through one pass together (:meth:`Engine.apply_many`; ``apply``
is a batch of one): every temporary-table row carries its instance, what used to be a plan's
parameters sit in ``ek_inst``, and each step is one statement for the whole batch, so a batch of
a thousand plans costs about the statements of one. On PostgreSQL big row lists are loaded with
``COPY``. The guard still decides per instance, and the change hooks fire once per batch.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import (
    BigInteger,
    Integer,
    Select,
    cast,
    column,
    insert,
    literal,
    select,
    table,
    text,
    union_all,
)

from .bulk import insert_rows
from .changes import EnrolmentChanges, RoleChange, RoleChanges
from .errors import EnrolkitError, NotFound
from .locks import lock_instances, retrying
from .methods import REMOVAL_ACTIONS, SUSPEND, UNENROL
from .models import ACTIVE, COURSE, EnrolInstance, HeldPlan

if TYPE_CHECKING:
    from .site import Site

ENROL, SUSPEND_OP, UNENROL_OP, REMOVE, UNASSIGN, LEAVE = (
    "enrol",
    "suspend",
    "unenrol",
    "remove",
    "unassign",
    "leave",
)
OPS = (ENROL, SUSPEND_OP, UNENROL_OP, REMOVE, UNASSIGN, LEAVE)

#: Columns a desired-state selection must label, in this order.
DESIRED_COLUMNS = ("user_id", "role_id", "timestart", "timeend", "status", "group_id")

#: Guard defaults: hold a plan removing more than this share of an instance and at least this many.
GUARD_SHARE, GUARD_MIN = 0.5, 10

#: On PostgreSQL, a temporary table holding this many rows is analyzed before it is joined; a
#: real table is re-analyzed only after at least this many changes (see ``_refresh_statistics``).
ANALYZE_ROWS = 1000
#: Key in a database connection's ``info``: rows of each real table the connection's batches
#: changed since it last analyzed that table.
UNANALYZED = "enrolkit_unanalyzed_rows"

EVENTS = {
    "enrolled": "user_enrolled",
    "updated": "user_enrolment_updated",
    "suspended": "user_enrolment_updated",
    "unenrolled": "user_unenrolled",
}


@dataclass(frozen=True)
class Change:
    """One explicit change for one user.

    ``enrol`` creates the enrolment or reactivates it; ``timestart``/``timeend`` of None keep the
    current dates (0 for a new enrolment); the role (``role_id`` or the instance's role) is added
    to the roles the instance owns, and ``group_id`` to its groups. ``suspend``, ``unenrol`` and
    ``remove`` (the instance's removal action) act on the enrolment, and ``remove`` with a
    ``role_id`` also removes that role; ``unassign`` removes one role; ``leave`` takes the user
    out of ``group_id`` (a membership the instance owns), e.g. when a group template now names
    another group. ``status`` (``enrol`` only) is the status the enrolment gets: active by
    default; suspended to change the dates of a suspended enrolment without resuming it.
    """

    user_id: int
    op: str = ENROL
    role_id: int | None = None
    timestart: int | None = None
    timeend: int | None = None
    group_id: int | None = None
    reason: str = ""
    status: int = ACTIVE

    def __post_init__(self):
        if self.op not in OPS:
            raise ValueError(f"unknown change {self.op!r}; expected one of {', '.join(OPS)}")


@dataclass
class Plan:
    """What a method wants for one instance. Give ``desired`` or ``changes``, not both."""

    instance_id: int
    reason: str
    desired: Select | Sequence[Sequence] | None = None
    changes: Sequence[Change] = ()
    #: Removal action for users leaving a desired state, or for ``remove``; None: the method's.
    removal: str | None = None
    #: Apply the mass-removal guard. None: guard desired states (syncs), not explicit changes.
    guard: bool | None = None
    #: Limit a desired state to these users: the others are neither added nor removed. A change
    #: hook that knows who changed (a cohort member joined) syncs just them, at a cost that does
    #: not grow with the size of the source.
    users: Sequence[int] | None = None
    #: At most this many enrolments in the instance (Moodle's ``maxenrolled``; suspended ones
    #: count too). The engine counts under a lock on the instance, so concurrent plans cannot
    #: both take the last place; the users who did not fit are the outcome's ``full``, in
    #: ascending id order after those who did. None: no limit.
    capacity: int | None = None

    def __post_init__(self):
        if self.desired is not None and self.changes:
            raise ValueError("a plan is a desired state or explicit changes, not both")
        if self.users is not None and self.desired is None:
            raise ValueError("only a desired state can be limited to some users")
        if self.removal is not None and self.removal not in REMOVAL_ACTIONS:
            raise ValueError(f"unknown removal action {self.removal!r}")
        if self.capacity is not None and self.capacity < 0:
            raise ValueError("a capacity is a number of places, 0 or more")

    @property
    def guarded(self) -> bool:
        return self.desired is not None if self.guard is None else self.guard


@dataclass
class Outcome:
    """What a plan changed (or, in a dry run or when held, would change)."""

    instance_id: int
    enrolled: list[int] = field(default_factory=list)
    updated: list[int] = field(default_factory=list)
    suspended: list[int] = field(default_factory=list)
    unenrolled: list[int] = field(default_factory=list)
    roles_added: int = 0
    roles_removed: int = 0
    groups_added: int = 0
    groups_removed: int = 0
    dry_run: bool = False
    held_plan_id: int | None = None
    #: Users the plan would have enrolled but the plan's ``capacity`` left no place for.
    full: list[int] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "enrolled": len(self.enrolled),
            "updated": len(self.updated),
            "suspended": len(self.suspended),
            "unenrolled": len(self.unenrolled),
            "roles_added": self.roles_added,
            "roles_removed": self.roles_removed,
            "groups_added": self.groups_added,
            "groups_removed": self.groups_removed,
        }

    @property
    def changed(self) -> bool:
        return any(self.counts().values())

    @property
    def changed_users(self) -> bool:
        """Whether any enrolment changed (roles and groups aside)."""
        return bool(self.enrolled or self.updated or self.suspended or self.unenrolled)


# Temporary tables, one set per database connection. Every row carries the instance it belongs
# to, so the plans of a batch share them and each step is one statement for the whole batch.
# DDL is portable SQLite/PostgreSQL.
_TEMP_DDL = (
    # One row per plan of the batch: what a statement needs to know of its instance.
    "CREATE TEMPORARY TABLE IF NOT EXISTS ek_inst (instance_id INTEGER PRIMARY KEY,"
    " course_id INTEGER NOT NULL, component VARCHAR(100) NOT NULL,"
    " removal VARCHAR(20) NOT NULL, reason TEXT NOT NULL, desired INTEGER NOT NULL,"
    " scoped INTEGER NOT NULL, guarded INTEGER NOT NULL, capacity INTEGER, room INTEGER,"
    " held INTEGER NOT NULL)",
    "CREATE TEMPORARY TABLE IF NOT EXISTS ek_plan (instance_id INTEGER NOT NULL,"
    " user_id INTEGER NOT NULL, role_id INTEGER, timestart BIGINT, timeend BIGINT,"
    " status INTEGER, group_id INTEGER)",
    "CREATE TEMPORARY TABLE IF NOT EXISTS ek_scope (instance_id INTEGER NOT NULL,"
    " user_id INTEGER NOT NULL, PRIMARY KEY (instance_id, user_id))",
    "CREATE TEMPORARY TABLE IF NOT EXISTS ek_want (instance_id INTEGER NOT NULL,"
    " user_id INTEGER NOT NULL, timestart BIGINT, timeend BIGINT, status INTEGER NOT NULL,"
    " reason TEXT, PRIMARY KEY (instance_id, user_id))",
    "CREATE TEMPORARY TABLE IF NOT EXISTS ek_drop (instance_id INTEGER NOT NULL,"
    " user_id INTEGER NOT NULL, action VARCHAR(20) NOT NULL, reason TEXT,"
    " PRIMARY KEY (instance_id, user_id))",
    "CREATE TEMPORARY TABLE IF NOT EXISTS ek_rp (instance_id INTEGER NOT NULL,"
    " user_id INTEGER NOT NULL, role_id INTEGER NOT NULL, add_it INTEGER NOT NULL, reason TEXT)",
    "CREATE TEMPORARY TABLE IF NOT EXISTS ek_gp (instance_id INTEGER NOT NULL,"
    " user_id INTEGER NOT NULL, group_id INTEGER NOT NULL, add_it INTEGER NOT NULL, reason TEXT)",
    "CREATE TEMPORARY TABLE IF NOT EXISTS ek_diff (instance_id INTEGER NOT NULL,"
    " user_id INTEGER NOT NULL, kind VARCHAR(12) NOT NULL, reason TEXT)",
    "CREATE TEMPORARY TABLE IF NOT EXISTS ek_roles (instance_id INTEGER NOT NULL,"
    " user_id INTEGER NOT NULL, role_id INTEGER NOT NULL, added INTEGER NOT NULL, reason TEXT,"
    " owned INTEGER DEFAULT 1)",
    "CREATE TEMPORARY TABLE IF NOT EXISTS ek_groups (instance_id INTEGER NOT NULL,"
    " user_id INTEGER NOT NULL, group_id INTEGER NOT NULL, added INTEGER NOT NULL, reason TEXT)",
)
#: The columns of a big batch's temporary tables that the planner's statistics are kept for:
#: every one a statement joins or filters on, not the free-text ``reason``, which is only copied
#: (sampling it made up ~40% of an ANALYZE of 20,000 wanted enrolments: 9.6 ms, 5.7 ms without).
_ANALYZED_COLUMNS = {
    "ek_plan": "(instance_id, user_id, role_id, timestart, timeend, status, group_id)",
    "ek_want": "(instance_id, user_id, timestart, timeend, status)",
    "ek_drop": "(instance_id, user_id, action)",
    "ek_rp": "(instance_id, user_id, role_id, add_it)",
    "ek_gp": "(instance_id, user_id, group_id, add_it)",
    "ek_diff": "(instance_id, user_id, kind)",
    "ek_roles": "(instance_id, user_id, role_id, added, owned)",
    "ek_groups": "(instance_id, user_id, group_id, added)",
}
_TEMP_TABLES = (
    "ek_inst",
    "ek_scope",
    "ek_plan",
    "ek_want",
    "ek_drop",
    "ek_rp",
    "ek_gp",
    "ek_diff",
    "ek_roles",
    "ek_groups",
)
# Every temp table is probed per row of a real table (or of another temp table): without these
# lookups by instance and user the diff is quadratic. Group rows are also looked up across
# instances (two instances of a batch adding one user to one group), so user comes first there.
_TEMP_INDEXES = (
    "CREATE INDEX IF NOT EXISTS ek_plan_user ON ek_plan (instance_id, user_id, role_id)",
    "CREATE INDEX IF NOT EXISTS ek_diff_user ON ek_diff (instance_id, user_id, kind)",
    "CREATE INDEX IF NOT EXISTS ek_rp_user ON ek_rp (instance_id, user_id, role_id)",
    "CREATE INDEX IF NOT EXISTS ek_gp_user ON ek_gp (user_id, group_id, instance_id)",
    "CREATE INDEX IF NOT EXISTS ek_roles_user ON ek_roles (instance_id, user_id, role_id)",
    "CREATE INDEX IF NOT EXISTS ek_groups_user ON ek_groups (user_id, group_id, instance_id)",
)


#: On SQLite, the sizes the planner assumes for the tables that drive the statements reading a
#: real table (``_sources``): a batch's instances, and the users of a limited sync. SQLite keeps
#: no statistics for a temporary table unless told, and guesses a million rows: it then expects
#: a million index searches into user_enrolments and first builds a Bloom filter over the whole
#: of it, so one small sync read all of a big site's enrolments and role assignments.
_SQLITE_ESTIMATES = (
    "ANALYZE temp",  # creates temp.sqlite_stat1
    "DELETE FROM temp.sqlite_stat1",
    "INSERT INTO temp.sqlite_stat1 (tbl, idx, stat)"
    " VALUES ('ek_inst', NULL, '10'), ('ek_scope', NULL, '10')",
    "ANALYZE temp.sqlite_schema",  # loads them
)


def _reset_ddl(postgresql: bool) -> tuple[str, ...]:
    """A view ``ek_work`` whose deletion empties every temporary table: one statement, and on
    PostgreSQL one round trip, where a batch would otherwise send a DELETE per table an earlier
    batch filled (seven for a one-user cohort change). PostgreSQL runs the DELETEs as a rule,
    SQLite as an INSTEAD OF trigger. Measured on PostgreSQL 15 with a row in each of seven
    tables: the view 43 µs, seven DELETEs 141 µs, one ``TRUNCATE`` of the seven 600 µs (it gives
    each table and index a new file)."""
    empty = "; ".join(f"DELETE FROM {name}" for name in _TEMP_TABLES)
    if postgresql:
        return (
            "CREATE OR REPLACE TEMPORARY VIEW ek_work AS SELECT 1 AS one",
            f"CREATE OR REPLACE RULE ek_work_empties AS ON DELETE TO ek_work DO INSTEAD ({empty})",
        )
    return (
        "CREATE TEMPORARY VIEW IF NOT EXISTS ek_work AS SELECT 1 AS one",
        "CREATE TEMPORARY TRIGGER IF NOT EXISTS ek_work_empties INSTEAD OF DELETE ON ek_work"
        f" BEGIN {empty}; END",
    )


#: Key in a database connection's ``info``: its temporary tables exist.
TEMP_TABLES_READY = "enrolkit_temp_tables"
#: Key in a database connection's ``info``: batches its temporary tables have held.
BATCHES = "enrolkit_temp_batches"

#: On PostgreSQL, a batch of at least this many plans has its table of instances analyzed.
ANALYZE_INSTANCES = 100
#: On PostgreSQL, every this many batches on one connection truncate all the temporary tables.
#: Small batches empty them with DELETE, and autovacuum never visits temporary tables: without
#: it a pooled connection's tables and indexes grow by about 250 bytes a batch for its whole life
#: (350 kB to 1.1 MB over 3,000 one-user batches), and the planner, sizing them by their pages,
#: would start hashing big tables for small batches. One TRUNCATE costs about 14 DELETEs.
TRUNCATE_EVERY = 1000

#: On PostgreSQL, rows loaded into a temporary table with COPY rather than an executemany.
COPY_ROWS = 500
#: Desired-state selections loaded by one statement (SQLite allows 500 terms in a compound select).
UNION_SELECTIONS = 100

_INST_COLUMNS = (
    "instance_id",
    "course_id",
    "component",
    "removal",
    "reason",
    "desired",
    "scoped",
    "guarded",
    "capacity",
    "held",
)
ek_plan = table("ek_plan", column("instance_id"), *(column(name) for name in DESIRED_COLUMNS))
ek_scope = table("ek_scope", column("instance_id"), column("user_id"))


_NATIVE: dict[tuple[str, str], str] = {}
_BIND = re.compile(r"(?<![:\w]):(\w+)")


def _native(statement: str, dialect) -> str:
    """``statement`` with ``:name`` parameters in the driver's own style (sqlite3 takes them as
    they are; psycopg wants ``%(name)s``), converted once per statement and dialect."""
    key = (dialect.paramstyle, statement)
    found = _NATIVE.get(key)
    if found is None:
        found = statement
        if dialect.paramstyle == "pyformat":
            found = _BIND.sub(r"%(\1)s", statement.replace("%", "%%"))
        _NATIVE[key] = found
    return found


class Engine:
    """Applies plans for one :class:`Site`. Reach it as ``site.engine``."""

    def __init__(self, site: Site) -> None:
        self.site = site

    def apply(
        self, plan: Plan, *, dry_run: bool = False, force: bool = False, isolated: bool = False
    ) -> Outcome:
        """Apply one plan: a batch of one (see :meth:`apply_many`).

        Apply ``plan`` in one transaction (or as part of one already open), as the only
        writer of its instance: the instance's lock (:func:`~enrolkit.locks.lock_instances`) is
        taken before the plan's source is read, so a concurrent plan's changes are either all
        seen or not yet begun. A plan that is its own transaction is run again when the database
        ends it with a deadlock or a serialisation failure.

        ``dry_run`` computes the outcome and writes nothing. ``force`` skips the guard (used when
        an admin approves a held plan). ``isolated`` is :meth:`apply_many`'s.
        """
        return self.apply_many([plan], dry_run=dry_run, force=force, isolated=isolated)[0]

    def apply_many(
        self,
        plans: Sequence[Plan],
        *,
        dry_run: bool = False,
        force: bool = False,
        isolated: bool = False,
    ) -> list[Outcome]:
        """Apply several plans, at most one per instance, in one transaction and one engine
        pass; their outcomes in the order of ``plans``.

        Every instance's lock is taken first, in ascending order. The plans share the engine's
        temporary tables (keyed by instance), so the number of statements does not grow with
        the number of plans. The guard decides per instance: a held plan is stored and the
        others are written. Change hooks fire once for the batch. ``dry_run`` and ``force`` are
        :meth:`apply`'s. A batch the database ends with a deadlock or a serialisation failure is
        run again as a whole.

        Inside a transaction already open the batch is a savepoint, so that a failing batch
        undoes only itself; inside a block that is all or nothing (``Site.atomic(whole=True)``:
        a request's change and the plans it applies) it takes none, which saves two of a small
        batch's twenty-odd round trips, and its failure fails that block. ``isolated`` keeps
        the savepoint there too, for a caller that goes on after the failure
        (:func:`enrolkit.batches.apply_batched` with ``isolate``).
        """
        plans = list(plans)
        ids = [plan.instance_id for plan in plans]
        if len(set(ids)) != len(ids):
            raise ValueError("a batch holds at most one plan per instance; merge their changes")
        if not plans:
            return []
        site = self.site
        if len(ids) == 1:  # the identity map often has it: no query
            single = site.session.get(EnrolInstance, ids[0])
            found = {ids[0]: single} if single is not None else {}
        else:
            found = {
                instance.id: instance
                for instance in site.session.scalars(
                    select(EnrolInstance).where(EnrolInstance.id.in_(ids))
                )
            }
        missing = [instance_id for instance_id in ids if instance_id not in found]
        if missing:
            raise NotFound(f"no enrolment instance {missing[0]}")
        items = [
            (
                found[plan.instance_id],
                plan,
                plan.removal
                or site.plugins.method(found[plan.instance_id].method).removal_action(
                    site, found[plan.instance_id]
                ),
            )
            for plan in plans
        ]

        def attempt() -> list[Outcome]:
            with site.atomic(savepoint=isolated or not site.all_or_nothing):
                lock_instances(site.session, ids)
                return _Batch(site, items).run(dry_run=dry_run, force=force)

        return attempt() if dry_run else retrying(site, attempt)

    def approve(self, held_id: int) -> Outcome:
        """Apply a held plan as it was computed, and mark it approved."""
        held = self._held(held_id)
        plan = Plan(
            instance_id=held.instance_id,
            reason=held.reason,
            desired=[tuple(row) for row in held.payload["rows"]],
            removal=held.payload.get("removal"),
            users=held.payload.get("users"),
            capacity=held.payload.get("capacity"),
        )
        previous_origin = self.site.origin
        self.site.origin = held.origin or previous_origin
        try:
            with self.site.atomic():
                outcome = self.apply(plan, force=True)
                held.status, held.timedecided = "approved", self.site.now()
                held.decided_by = self.site.actor
        finally:
            self.site.origin = previous_origin
        return outcome

    def discard(self, held_id: int) -> None:
        held = self._held(held_id)
        with self.site.atomic():
            held.status, held.timedecided = "discarded", self.site.now()
            held.decided_by = self.site.actor

    def _held(self, held_id: int) -> HeldPlan:
        held = self.site.session.get(HeldPlan, held_id)
        if held is None:
            raise NotFound(f"no held plan {held_id}; see `enrolkit plan list`")
        if held.status != "held":
            raise EnrolkitError(f"plan {held_id} was already {held.status}")
        return held


#: The rows that join a temporary table to its instance's parameters.
_INST = "JOIN ek_inst i ON i.instance_id = {a}.instance_id"

#: The users of a batch's last unenrolment from each course (the highest instance id when
#: several instances of one course unenrol the same user): Moodle's rule removes the user's
#: unowned roles and groups there once, logged by that instance.
_LAST_UNENROLMENTS = (
    "(SELECT MAX(d.instance_id) AS instance_id, d.user_id, i.course_id FROM ek_diff d"
    " JOIN ek_inst i ON i.instance_id = d.instance_id WHERE d.kind = 'unenrolled'"
    " GROUP BY d.user_id, i.course_id) last"
    " JOIN ek_diff d ON d.instance_id = last.instance_id AND d.user_id = last.user_id"
)
_NOT_IN_COURSE = (
    " AND NOT EXISTS (SELECT 1 FROM user_enrolments ue"
    " JOIN enrol_instances ei ON ei.id = ue.instance_id"
    " WHERE ei.course_id = last.course_id AND ue.user_id = {a}.user_id)"
)


class _Batch:
    """One application of a batch of plans (one per instance): the SQL steps, in order, each
    one statement for every instance of the batch."""

    def __init__(self, site: Site, items: list[tuple[EnrolInstance, Plan, str]]) -> None:
        self.site = site
        self.session = site.session
        self.items = items
        self.now = site.now()
        self.params = {"now": self.now, "origin": site.origin, "course_level": COURSE}
        plans = [plan for _, plan, _ in items]
        #: Whether some plan is a desired state of its whole instance / limited to some users.
        self.whole = any(p.desired is not None and p.users is None for p in plans)
        self.scoped = any(p.users is not None for p in plans)
        self.capacity = any(p.capacity is not None for p in plans)

    def run(self, *, dry_run: bool, force: bool) -> list[Outcome]:
        self.load()
        self.diff()
        outcomes = self.outcomes(dry_run=dry_run, guard=not (dry_run or force))
        if dry_run:
            return outcomes
        held = [] if force else self.trips_guard(outcomes)
        if self.whole:
            self.supersede_held()
        if held:
            self.hold(held, outcomes)
        self.write([outcome for outcome in outcomes if outcome.held_plan_id is None])
        return outcomes

    def sql(self, statement: str, **extra) -> None:
        self._driver(statement, {**self.params, **extra})

    def rows(self, statement: str) -> list:
        return self._driver(statement, self.params).fetchall()

    def _driver(self, statement: str, params):
        """Run one of the engine's own statements straight through the driver. They are
        fixed strings, so SQLAlchemy's compilation, caching and parameter processing (most of
        the cost of a small plan's thirty-odd statements) buy nothing here."""
        connection = self.session.connection()
        return connection.exec_driver_sql(_native(statement, connection.dialect), params)

    @cached_property
    def _postgresql(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"

    def _count(self, statement: str) -> int:
        """Run one of the engine's statements; how many rows it wrote."""
        return self._driver(statement, self.params).rowcount

    def _insert_rows(self, table_name: str, names: Sequence[str], rows: list[tuple]) -> None:
        """Plain rows into one of the temporary tables: one executemany, or on PostgreSQL a
        ``COPY`` for ``COPY_ROWS`` rows or more (:func:`enrolkit.bulk.insert_rows`)."""
        if rows:
            insert_rows(self.session, table_name, names, rows, copy_from=COPY_ROWS - 1)

    # --- 1. load the plans into temporary tables --------------------------------------------

    def load(self) -> None:
        #: Rows per temporary table of the batch, counted as they are inserted: the steps with
        #: nothing to work on are skipped (a one-user plan runs a third of them).
        self.size = {"want": 0, "drop": 0, "rp": 0, "gp": 0}
        self._reset()
        self._insert_rows(
            "ek_inst",
            _INST_COLUMNS,
            [
                (
                    instance.id,
                    instance.course_id,
                    instance.component,
                    removal,
                    plan.reason,
                    int(plan.desired is not None),
                    int(plan.users is not None),
                    int(plan.guarded),
                    plan.capacity,
                    0,
                )
                for instance, plan, removal in self.items
            ],
        )
        if self._postgresql and len(self.items) >= ANALYZE_INSTANCES:
            self.session.execute(text("ANALYZE ek_inst"))
            self._big_tables().add("ek_inst")
        if self.capacity:
            self.lock_instances()
        self._load_desired()
        self._load_changes()
        self._analyze("ek_drop", "ek_rp", "ek_gp")

    def _reset(self) -> None:
        """Create the temporary tables once per connection, and empty what an earlier batch
        filled: one statement for every table (see :func:`_reset_ddl`)."""
        # A rollback may undo their creation, so db.py forgets the flag on every rollback.
        info = self.session.connection().info
        if not info.get(TEMP_TABLES_READY):
            for ddl in _TEMP_DDL + _TEMP_INDEXES + _reset_ddl(self._postgresql):
                self.session.execute(text(ddl))
            info[TEMP_TABLES_READY] = True
            self._analyze_empty(_TEMP_TABLES)
            if not self._postgresql:
                for statement in _SQLITE_ESTIMATES:
                    self.session.execute(text(statement))
        # A table a big batch filled is truncated: that frees its pages and forgets its
        # statistics, which would otherwise mislead the planner for the small batches after it.
        big = self._big_tables()
        if self._postgresql:
            info[BATCHES] = batches = info.get(BATCHES, 0) + 1
            if batches % TRUNCATE_EVERY == 0:
                big.update(_TEMP_TABLES)
        if big:
            self.session.execute(text(f"TRUNCATE {', '.join(sorted(big))}"))
            self._analyze_empty(sorted(big))
            big.clear()
        # Even new ones: tables kept through a rolled-back savepoint hold what they held.
        self.sql("DELETE FROM ek_work")

    def _analyze_empty(self, tables: Sequence[str]) -> None:
        """On PostgreSQL, record that these temporary tables are empty. Never analyzed (new or
        truncated), the planner assumes ten pages of rows in each: for a batch of a few users
        it then hashes all of user_enrolments instead of probing its index per user. Known to
        be empty, it sizes them by their pages, so a small batch probes and a big one (analyzed
        after loading) hashes."""
        if self._postgresql:
            self.session.execute(text(f"ANALYZE {', '.join(tables)}"))

    def _big_tables(self) -> set[str]:
        """Temporary tables of this connection analyzed for a big batch (PostgreSQL only)."""
        return self.session.connection().info.setdefault("enrolkit_big_temp_tables", set())

    @cached_property
    def _small(self) -> bool:
        """Whether the batch is too small to fill the temporary tables past ``ANALYZE_ROWS``
        (the explicit changes of a login, or syncs limited to the users a hook names): then
        they are never counted, which saves three queries per batch."""
        bound = 0
        for _, plan, _ in self.items:
            if plan.users is not None:
                bound += len(plan.users)
            elif plan.desired is None:
                bound += len(plan.changes)
            else:
                return False
        return 2 * bound < ANALYZE_ROWS

    def _analyze(self, *tables: str) -> None:
        """On PostgreSQL, give the planner the sizes of the temporary tables of a big batch:
        autovacuum never analyzes them, and the guesses it plans with otherwise make the diff
        quadratic."""
        if not self._postgresql or self._small:
            return
        if self.size["want"] + self.size["drop"] < ANALYZE_ROWS:
            return
        self.session.execute(
            text("ANALYZE " + ", ".join(f"{name} {_ANALYZED_COLUMNS[name]}" for name in tables))
        )
        self._big_tables().update(tables)

    def _load_desired(self) -> None:
        """Every desired state into ek_plan (one ``INSERT … SELECT`` per selection, one load
        for all the row lists), then what it implies: the wanted enrolments, the enrolments
        to remove, and the roles and groups to add and to remove."""
        desired = [(plan, plan.desired) for _, plan, _ in self.items if plan.desired is not None]
        if not desired:
            return
        self._insert_rows(
            "ek_scope",
            ("instance_id", "user_id"),
            [
                (plan.instance_id, user_id)
                for plan, _ in desired
                if plan.users is not None
                for user_id in sorted(set(plan.users))
            ],
        )
        rows: list[tuple] = []
        selections = []
        for plan, selection in desired:
            if isinstance(selection, Select):
                selections.append(self._selection(plan, selection))
            else:
                wanted = set(plan.users) if plan.users is not None else None
                rows.extend(
                    (plan.instance_id, *row)
                    for row in selection
                    if wanted is None or row[0] in wanted
                )
        self._insert_selections(selections)
        self._insert_rows("ek_plan", ("instance_id", *DESIRED_COLUMNS), rows)
        # One enrolment per user: active if any row is, earliest start, latest end (open wins).
        self.size["want"] += self._count(
            "INSERT INTO ek_want (instance_id, user_id, timestart, timeend, status, reason)"
            " SELECT instance_id, user_id, MIN(COALESCE(timestart, 0)),"
            " CASE WHEN MIN(COALESCE(timeend, 0)) = 0 THEN 0 ELSE MAX(timeend) END,"
            " MIN(COALESCE(status, 0)), NULL FROM ek_plan GROUP BY instance_id, user_id"
        )
        self._analyze("ek_plan", "ek_want")
        for source in self._sources("user_enrolments", "instance_id"):
            self.size["drop"] += self._count(
                "INSERT INTO ek_drop (instance_id, user_id, action, reason)"
                " SELECT x.instance_id, x.user_id, i.removal, NULL FROM "
                + source
                + " AND NOT EXISTS (SELECT 1 FROM ek_want w"
                "  WHERE w.instance_id = x.instance_id AND w.user_id = x.user_id)"
            )
        # Owned roles and groups match the selection exactly, one statement per table: those
        # the selection gives are added; a wanted user keeps only those; a user neither wanted
        # nor enrolled keeps none (an orphan that a crash or an older race left: nothing else
        # would ever remove it); a user enrolled and no longer wanted (in ek_drop) is left to
        # the removal action. Anti-joins, which the database runs as hash joins over a big batch.
        for owned, key, real in (
            ("ek_rp", "role_id", "role_assignments"),
            ("ek_gp", "group_id", "group_members"),
        ):
            removed = [
                f"SELECT x.itemid, x.user_id, x.{key}, 0, NULL FROM "
                + source
                + " AND NOT EXISTS (SELECT 1 FROM ek_plan p WHERE p.instance_id = x.itemid"
                f"  AND p.user_id = x.user_id AND p.{key} = x.{key})"
                " AND NOT EXISTS (SELECT 1 FROM ek_drop d"
                "  WHERE d.instance_id = x.itemid AND d.user_id = x.user_id)"
                for source in self._sources(real, "itemid", " AND x.component = i.component")
            ]
            self.size[owned[3:]] += self._count(
                f"INSERT INTO {owned} (instance_id, user_id, {key}, add_it, reason)"
                f" SELECT DISTINCT instance_id, user_id, {key}, 1, NULL FROM ek_plan"
                f" WHERE {key} IS NOT NULL UNION ALL " + " UNION ALL ".join(removed)
            )

    def _sources(self, real: str, item: str, owner: str = "") -> list[str]:
        """``FROM … WHERE`` clauses giving the rows ``x`` of ``real`` (whose instance column is
        ``item``) that the desired states look at, with their instance as ``i``: every row of
        an instance synced whole; only the named users' rows of a limited one, read through
        ek_scope so that they cost what those users cost. One clause per kind in the batch."""
        found = []
        if self.whole:
            found.append(
                f"ek_inst i JOIN {real} x ON x.{item} = i.instance_id{owner}"
                " WHERE i.desired = 1 AND i.scoped = 0"
            )
        if self.scoped:
            found.append(
                "ek_scope s JOIN ek_inst i ON i.instance_id = s.instance_id"
                f" JOIN {real} x ON x.{item} = s.instance_id AND x.user_id = s.user_id{owner}"
                " WHERE 1 = 1"
            )
        return found

    def _selection(self, plan: Plan, selection: Select) -> Select:
        """One desired state given as a SQL selection, with its instance id as a last column."""
        if plan.users is not None:
            # Filter on the selection's own user column, so the database reads only those
            # users' rows (through its indexes) instead of the whole source.
            user = selection.selected_columns["user_id"]
            selection = selection.where(
                getattr(user, "element", user).in_(
                    select(ek_scope.c.user_id).where(ek_scope.c.instance_id == plan.instance_id)
                )
            )
        # A bound value, not an inline one: every cohort's selection then compiles to the same
        # SQL, which SQLAlchemy compiles once.
        return selection.add_columns(literal(plan.instance_id, Integer).label("instance_id"))

    def _insert_selections(self, selections: list[Select]) -> None:
        """The selections into ek_plan: ``UNION ALL`` of up to ``UNION_SELECTIONS`` of them per
        ``INSERT … SELECT`` (a round trip per instance is most of a small cohort's cost on
        PostgreSQL). A selection with its own ORDER BY or LIMIT goes alone: SQLite does not take
        those inside a compound select."""
        alone = [s for s in selections if _bounded(s)]
        together = [s for s in selections if not _bounded(s)]
        chunks = [
            together[start : start + UNION_SELECTIONS]
            for start in range(0, len(together), UNION_SELECTIONS)
        ]
        for chunk in [[s] for s in alone] + chunks:
            source = chunk[0] if len(chunk) == 1 else _typed(union_all(*chunk).subquery())
            self.session.execute(
                insert(ek_plan).from_select([*DESIRED_COLUMNS, "instance_id"], source)
            )

    def _load_changes(self) -> None:
        """Collapse each plan's explicit changes: per user the last enrolment-level change
        wins, per user and role the last role-level one; then load them all, like desired
        states restricted to them."""
        want: list[tuple] = []
        drop: list[tuple] = []
        roles: list[tuple] = []
        groups: list[tuple] = []
        for instance, plan, removal in self.items:
            if plan.desired is not None:
                continue
            plan_want, plan_drop, plan_roles, plan_groups = _collapse(
                plan.changes, instance.role_id, removal
            )
            want.extend((instance.id, uid, *values) for uid, values in plan_want.items())
            drop.extend((instance.id, uid, *values) for uid, values in plan_drop.items())
            roles.extend((instance.id, *key, *values) for key, values in plan_roles.items())
            groups.extend((instance.id, *key, *values) for key, values in plan_groups.items())
        columns = ("timestart", "timeend", "status", "reason")
        for name, rows in (("want", want), ("drop", drop), ("rp", roles), ("gp", groups)):
            self.size[name] += len(rows)
        self._insert_rows("ek_want", ("instance_id", "user_id", *columns), want)
        if want:
            self._analyze("ek_want")
        self._insert_rows("ek_drop", ("instance_id", "user_id", "action", "reason"), drop)
        self._insert_rows("ek_rp", ("instance_id", "user_id", "role_id", "add_it", "reason"), roles)
        self._insert_rows(
            "ek_gp", ("instance_id", "user_id", "group_id", "add_it", "reason"), groups
        )

    # --- 2. the difference, in SQL ------------------------------------------------------------

    def diff(self) -> None:
        size = self.size
        if size["want"] or size["drop"]:
            self._diff_enrolments()
        if size["rp"] or size["drop"]:
            self._diff_roles()
        # Removals first: a membership that one instance of the batch gives up is free for
        # another to take.
        if size["gp"] or size["drop"]:
            self._diff_groups_removed()
        if size["want"] and size["gp"]:
            self._diff_groups_added()
        if self.capacity and size["want"]:
            self.fit()
        self._analyze("ek_diff", "ek_roles", "ek_groups")

    def _diff_enrolments(self) -> None:
        """The enrolments to add, update or suspend (wanted), and to unenrol or suspend
        (dropped): one statement."""
        parts = []
        if self.size["want"]:
            parts += [
                "SELECT w.instance_id, w.user_id, 'enrolled', w.reason FROM ek_want w"
                " WHERE NOT EXISTS (SELECT 1 FROM user_enrolments ue"
                "  WHERE ue.instance_id = w.instance_id AND ue.user_id = w.user_id)",
                "SELECT w.instance_id, w.user_id,"
                " CASE WHEN w.status = 1 AND ue.status = 0 THEN 'suspended' ELSE 'updated' END,"
                " w.reason FROM ek_want w CROSS JOIN user_enrolments ue"
                " WHERE ue.instance_id = w.instance_id AND ue.user_id = w.user_id"
                " AND (ue.status <> w.status"
                " OR (w.timestart IS NOT NULL AND ue.timestart <> w.timestart)"
                " OR (w.timeend IS NOT NULL AND ue.timeend <> w.timeend))",
            ]
        if self.size["drop"]:
            parts.append(
                "SELECT d.instance_id, d.user_id,"
                " CASE WHEN d.action = 'unenrol' THEN 'unenrolled' ELSE 'suspended' END, d.reason"
                " FROM ek_drop d CROSS JOIN user_enrolments ue"
                " WHERE ue.instance_id = d.instance_id AND ue.user_id = d.user_id"
                " AND (d.action = 'unenrol' OR (d.action IN ('suspend', 'suspend_noroles')"
                " AND ue.status = 0))"
            )
        self.sql(
            "INSERT INTO ek_diff (instance_id, user_id, kind, reason) " + " UNION ALL ".join(parts)
        )

    def _diff_roles(self) -> None:
        """Roles to add (ek_rp holds additions only for users who stay enrolled: only an
        enrolment adds a role) and to remove (asked for, or implied by an unenrolment or a
        suspension that removes roles): one statement."""
        parts = []
        if self.size["want"] and self.size["rp"]:
            parts.append(
                "SELECT p.instance_id, p.user_id, p.role_id, 1, p.reason FROM ek_rp p "
                + _INST.format(a="p")
                + " WHERE p.add_it = 1"
                " AND NOT EXISTS (SELECT 1 FROM role_assignments ra WHERE ra.user_id = p.user_id"
                "  AND ra.role_id = p.role_id AND ra.component = i.component"
                "  AND ra.itemid = p.instance_id)"
            )
        parts.append(
            "SELECT ra.itemid, ra.user_id, ra.role_id, 0, COALESCE(p.reason, d.reason)"
            " FROM (SELECT instance_id, user_id FROM ek_rp WHERE add_it = 0"
            "  UNION SELECT instance_id, user_id FROM ek_drop"
            "  WHERE action IN ('unenrol', 'suspend_noroles')) who "
            + _INST.format(a="who")
            + " CROSS JOIN role_assignments ra"
            " LEFT JOIN ek_rp p ON p.instance_id = ra.itemid AND p.user_id = ra.user_id"
            "  AND p.role_id = ra.role_id AND p.add_it = 0"
            " LEFT JOIN ek_drop d ON d.instance_id = ra.itemid AND d.user_id = ra.user_id"
            "  AND d.action IN ('unenrol', 'suspend_noroles')"
            " WHERE ra.user_id = who.user_id AND ra.component = i.component"
            " AND ra.itemid = who.instance_id"
            " AND (p.user_id IS NOT NULL OR d.user_id IS NOT NULL)"
        )
        self.sql(
            "INSERT INTO ek_roles (instance_id, user_id, role_id, added, reason) "
            + " UNION ALL ".join(parts)
        )

    def _diff_groups_added(self) -> None:
        # A group holds a user once: when two instances of the batch add the same member, the
        # lower instance id does (as when their plans are applied one by one in that order).
        self.sql(
            "INSERT INTO ek_groups (instance_id, user_id, group_id, added, reason)"
            " SELECT p.instance_id, p.user_id, p.group_id, 1, p.reason FROM ek_gp p"
            " WHERE p.add_it = 1"
            " AND NOT EXISTS (SELECT 1 FROM group_members gm"
            "  WHERE gm.user_id = p.user_id AND gm.group_id = p.group_id"
            "  AND NOT EXISTS (SELECT 1 FROM ek_groups r WHERE r.user_id = gm.user_id"
            "   AND r.group_id = gm.group_id AND r.added = 0))"
            " AND NOT EXISTS (SELECT 1 FROM ek_gp q WHERE q.user_id = p.user_id"
            "  AND q.group_id = p.group_id AND q.instance_id < p.instance_id AND q.add_it = 1)"
        )

    def _diff_groups_removed(self) -> None:
        self.sql(
            "INSERT INTO ek_groups (instance_id, user_id, group_id, added, reason)"
            " SELECT gm.itemid, gm.user_id, gm.group_id, 0, COALESCE(p.reason, d.reason)"
            " FROM (SELECT instance_id, user_id FROM ek_gp WHERE add_it = 0"
            "  UNION SELECT instance_id, user_id FROM ek_drop WHERE action = 'unenrol') who "
            + _INST.format(a="who")
            + " CROSS JOIN group_members gm"
            " LEFT JOIN ek_gp p ON p.user_id = gm.user_id AND p.group_id = gm.group_id"
            "  AND p.instance_id = gm.itemid AND p.add_it = 0"
            " LEFT JOIN ek_drop d ON d.instance_id = gm.itemid AND d.user_id = gm.user_id"
            "  AND d.action = 'unenrol'"
            " WHERE gm.user_id = who.user_id AND gm.component = i.component"
            " AND gm.itemid = who.instance_id"
            " AND (p.user_id IS NOT NULL OR d.user_id IS NOT NULL)"
        )

    # --- 2b. capacity -----------------------------------------------------------------------

    def lock_instances(self) -> None:
        """Serialise the plans that count their instance's places: on PostgreSQL a row lock
        on each such instance, in ascending order, held to the end of the transaction (the diff
        that follows reads the enrolments committed by the plan that held it before); SQLite's
        write transaction is already the only writer of the database."""
        if self._postgresql:
            self.sql(
                "SELECT id FROM enrol_instances WHERE id IN"
                " (SELECT instance_id FROM ek_inst WHERE capacity IS NOT NULL)"
                " ORDER BY id FOR UPDATE"
            )

    def fit(self) -> None:
        """Per instance with a capacity, keep the new enrolments that fit (counting the
        enrolments there, less those this plan unenrols), lowest user id first; the others
        become ``full``, and lose the roles and groups they would have been given."""
        self.sql(
            "UPDATE ek_inst SET room = capacity"
            " - (SELECT COUNT(*) FROM user_enrolments ue WHERE ue.instance_id = ek_inst.instance_id)"
            " + (SELECT COUNT(*) FROM ek_diff d WHERE d.instance_id = ek_inst.instance_id"
            "  AND d.kind = 'unenrolled')"
            " WHERE capacity IS NOT NULL"
        )
        self.sql(
            "UPDATE ek_diff SET kind = 'full' WHERE kind = 'enrolled'"
            " AND (instance_id, user_id) IN (SELECT r.instance_id, r.user_id FROM"
            "  (SELECT d.instance_id, d.user_id,"
            "   ROW_NUMBER() OVER (PARTITION BY d.instance_id ORDER BY d.user_id) AS place"
            "   FROM ek_diff d JOIN ek_inst i ON i.instance_id = d.instance_id"
            "   WHERE d.kind = 'enrolled' AND i.capacity IS NOT NULL) r"
            "  JOIN ek_inst i ON i.instance_id = r.instance_id WHERE r.place > i.room)"
        )
        for name in ("ek_roles", "ek_groups"):
            self.sql(
                f"DELETE FROM {name} WHERE added = 1 AND EXISTS (SELECT 1 FROM ek_diff d"
                f" WHERE d.instance_id = {name}.instance_id AND d.user_id = {name}.user_id"
                " AND d.kind = 'full')"
            )

    def outcomes(self, *, dry_run: bool, guard: bool) -> list[Outcome]:
        """Each plan's outcome, read from the diff tables, in the order of the plans; with
        ``guard``, what the mass-removal guard counts too. One query for all of it."""
        found = {
            instance.id: Outcome(instance_id=instance.id, dry_run=dry_run)
            for instance, _, _ in self.items
        }
        size = self.size
        parts = []
        if size["want"] or size["drop"]:
            parts.append("SELECT 0, instance_id, user_id, 0, 0, kind FROM ek_diff")
        # The roles themselves (the change hooks are told of each), the groups counted.
        if size["rp"] or size["drop"]:
            parts.append("SELECT 1, instance_id, user_id, role_id, added, NULL FROM ek_roles")
        if size["gp"] or size["drop"]:
            parts.append(
                "SELECT 2, instance_id, added, COUNT(*), 0, NULL FROM ek_groups"
                " GROUP BY instance_id, added"
            )
        # Per guarded instance: the enrolments it would remove, and how many it has.
        if guard and (size["want"] or size["drop"]) and any(p.guarded for _, p, _ in self.items):
            parts.append(
                "SELECT 3, r.instance_id, r.removals, (SELECT COUNT(*) FROM user_enrolments ue"
                "  WHERE ue.instance_id = r.instance_id), 0, NULL"
                " FROM (SELECT d.instance_id, COUNT(*) AS removals FROM ek_diff d "
                + _INST.format(a="d")
                + " LEFT JOIN ek_drop x ON x.instance_id = d.instance_id AND x.user_id = d.user_id"
                "  WHERE i.guarded = 1 AND (d.kind = 'unenrolled'"
                "  OR (d.kind = 'suspended' AND x.user_id IS NOT NULL))"
                "  GROUP BY d.instance_id) r"
            )
        self.guard_counts: dict[int, tuple[int, int]] = {}
        #: The roles to add or remove: instance, user, role, added, owned by the instance.
        self.roles: list[tuple[int, int, int, int, int]] = []
        if parts:
            for part, instance_id, first, second, third, kind in self.rows(
                " UNION ALL ".join(parts)
            ):
                outcome = found[instance_id]
                if part == 0:
                    getattr(outcome, kind).append(first)
                elif part == 1:
                    self.roles.append((instance_id, first, second, third, 1))
                    if third:
                        outcome.roles_added += 1
                    else:
                        outcome.roles_removed += 1
                elif part == 2:
                    setattr(outcome, f"groups_{'added' if first else 'removed'}", second)
                else:
                    self.guard_counts[instance_id] = (first, second)
            # In user order, sorted here: an ORDER BY would sort the role rows too (a tenth of
            # a big batch's time on SQLite).
            for outcome in found.values():
                for name in ("enrolled", "updated", "suspended", "unenrolled", "full"):
                    getattr(outcome, name).sort()
        if any(outcome.full for outcome in found.values()):
            self.sql("DELETE FROM ek_diff WHERE kind = 'full'")
        return list(found.values())

    # --- 3. the guard -------------------------------------------------------------------------

    def trips_guard(self, outcomes: list[Outcome]) -> list[tuple[Outcome, str]]:
        """The guarded plans that would remove too much of their instance, with why (counted
        by :meth:`outcomes`)."""
        if not self.guard_counts:
            return []
        share = float(self.site.get_config("core", "guard_share", GUARD_SHARE))
        minimum = int(self.site.get_config("core", "guard_min", GUARD_MIN))
        held = []
        for outcome in outcomes:
            removals, total = self.guard_counts.get(outcome.instance_id, (0, 0))
            if removals and removals > share * total and removals >= minimum:
                why = (
                    f"would remove {removals} of {total} enrolments "
                    f"(limit: more than {share:.0%} and at least {minimum})"
                )
                held.append((outcome, why))
        return held

    def hold(self, held: list[tuple[Outcome, str]], outcomes: list[Outcome]) -> None:
        """Store each held plan, as rows, for an admin, and take its rows out of the diff so
        that the others are written. A plan of a whole instance replaced any older held plan
        of it (:meth:`supersede_held`); one limited to some users stands beside it."""
        plans = {instance.id: (plan, removal) for instance, plan, removal in self.items}
        if any(plans[outcome.instance_id][0].desired is None for outcome, _ in held):
            raise EnrolkitError("only desired-state plans can be held; use guard=False")
        self._driver(
            "UPDATE ek_inst SET held = 1 WHERE instance_id = :instance",
            [{"instance": outcome.instance_id} for outcome, _ in held],
        )
        rows: dict[int, list[list]] = {outcome.instance_id: [] for outcome, _ in held}
        for instance_id, *row in self.rows(
            "SELECT p.instance_id, p.user_id, p.role_id, p.timestart, p.timeend, p.status,"
            " p.group_id FROM ek_plan p " + _INST.format(a="p") + " WHERE i.held = 1"
        ):
            rows[instance_id].append(list(row))
        stored = []
        for outcome, why in held:
            plan, removal = plans[outcome.instance_id]
            stored.append(
                HeldPlan(
                    instance_id=outcome.instance_id,
                    origin=self.site.origin,
                    reason=plan.reason,
                    summary={**outcome.counts(), "why": why},
                    payload={
                        "rows": rows[outcome.instance_id],
                        "removal": removal,
                        "users": sorted(set(plan.users)) if plan.users is not None else None,
                        "capacity": plan.capacity,
                        "unenrolled": outcome.unenrolled,
                        "suspended": outcome.suspended,
                    },
                    timecreated=self.now,
                )
            )
        self.session.add_all(stored)
        self.session.flush()
        self._driver(
            "INSERT INTO log (time, event, component, course_id, user_id, instance_id, origin,"
            " reason) SELECT :now, 'plan_held', i.component, i.course_id, NULL, i.instance_id,"
            " :origin, :why FROM ek_inst i WHERE i.instance_id = :instance",
            [
                {
                    **self.params,
                    "instance": plan.instance_id,
                    "why": f"plan {plan.id} held: {why}; {plan.reason}",
                }
                for plan, (_, why) in zip(stored, held, strict=True)
            ],
        )
        for plan, (outcome, _) in zip(stored, held, strict=True):
            outcome.held_plan_id = plan.id
        for name in ("ek_diff", "ek_roles", "ek_groups", "ek_drop"):
            self.sql(
                f"DELETE FROM {name} WHERE instance_id IN"
                " (SELECT instance_id FROM ek_inst WHERE held = 1)"
            )

    def supersede_held(self) -> None:
        """A new plan of a whole instance, applied or held, replaces the plans held for it."""
        self.sql(
            "UPDATE held_plans SET status = 'superseded', timedecided = :now"
            " WHERE status = 'held' AND instance_id IN"
            " (SELECT instance_id FROM ek_inst WHERE desired = 1 AND scoped = 0)"
        )

    # --- 4. write, log, notify ------------------------------------------------------------------

    def write(self, written: list[Outcome]) -> None:
        """Write the plans that were not held, log their changes and tell the change hooks."""
        total = Outcome(instance_id=0)
        for outcome in written:
            for name in ("enrolled", "updated", "suspended", "unenrolled"):
                getattr(total, name).extend(getattr(outcome, name))
            for name in ("roles_added", "roles_removed", "groups_added", "groups_removed"):
                setattr(total, name, getattr(total, name) + getattr(outcome, name))
        if not total.changed:
            return
        self._write_enrolments(total)
        self._write_roles_and_groups(total)
        self._log(total)
        self._refresh_statistics(total)
        self._notify(written)

    def _refresh_statistics(self, total: Outcome) -> None:
        """On PostgreSQL, re-analyze a table once this connection's batches changed a share of
        it: the rows changed since the connection last analyzed it reach
        ``autovacuum_analyze_scale_factor`` (0.1 by default) of the rows it had then, and at least
        ``ANALYZE_ROWS``. Autovacuum applies the same rule, but only after commit and within a
        minute: a sync in the same transaction or just after it, planned on statistics from
        before the change (an instance that owns "no" roles, an empty table), picks nested
        loops that take minutes over 100,000 rows. The planner scales a table's analyzed row
        count by its current size, so a change that is a small share of the table leaves its
        plans good: not analyzing after every batch of 1,000 rows spares a 20,000-line chunk
        of a big site two samples of its largest tables."""
        if not self._postgresql:
            return
        pending = self.session.connection().info.setdefault(UNANALYZED, {})
        changed = {
            "user_enrolments": len(total.enrolled) + len(total.unenrolled),
            "role_assignments": total.roles_added + total.roles_removed,
            "group_members": total.groups_added + total.groups_removed,
        }
        for name, count in changed.items():
            pending[name] = pending.get(name, 0) + count
        candidates = sorted(name for name in changed if pending[name] >= ANALYZE_ROWS)
        if not candidates:
            return
        due = [
            name
            for name, rows, share in self.rows(
                "SELECT relname, reltuples,"
                " CAST(current_setting('autovacuum_analyze_scale_factor') AS FLOAT)"
                " FROM pg_class WHERE oid IN ("
                + ", ".join(f"CAST('{name}' AS REGCLASS)" for name in candidates)
                + ")"
            )
            if pending[name] > share * max(rows, 0)
        ]
        if due:
            self.session.execute(text(f"ANALYZE {', '.join(sorted(due))}"))
            for name in due:
                pending[name] = 0

    def _write_enrolments(self, total: Outcome) -> None:
        if total.enrolled:
            self.sql(
                "INSERT INTO user_enrolments (instance_id, user_id, status, timestart, timeend,"
                " timecreated, timemodified)"
                " SELECT w.instance_id, w.user_id, w.status, COALESCE(w.timestart, 0),"
                " COALESCE(w.timeend, 0), :now, :now FROM ek_want w"
                " JOIN ek_diff d ON d.instance_id = w.instance_id AND d.user_id = w.user_id"
                "  AND d.kind = 'enrolled'"
            )
        if total.updated or total.suspended:
            self.sql(
                "UPDATE user_enrolments SET status = w.status,"
                " timestart = COALESCE(w.timestart, user_enrolments.timestart),"
                " timeend = COALESCE(w.timeend, user_enrolments.timeend), timemodified = :now"
                " FROM ek_want w JOIN ek_diff d ON d.instance_id = w.instance_id"
                "  AND d.user_id = w.user_id AND d.kind IN ('updated', 'suspended')"
                " WHERE user_enrolments.instance_id = w.instance_id"
                " AND user_enrolments.user_id = w.user_id AND user_enrolments.id IN"
                " (SELECT ue.id FROM ek_diff x CROSS JOIN user_enrolments ue"
                "  WHERE x.kind IN ('updated', 'suspended') AND ue.instance_id = x.instance_id"
                "  AND ue.user_id = x.user_id)"
            )
        if total.suspended and self.size["drop"]:
            self.sql(
                "UPDATE user_enrolments SET status = 1, timemodified = :now"
                " WHERE status = 0 AND id IN (SELECT ue.id FROM ek_drop x"
                " CROSS JOIN user_enrolments ue WHERE x.action IN ('suspend', 'suspend_noroles')"
                " AND ue.instance_id = x.instance_id AND ue.user_id = x.user_id)"
            )
        if total.unenrolled:
            self.sql(
                "DELETE FROM user_enrolments WHERE id IN (SELECT ue.id FROM ek_diff d"
                " CROSS JOIN user_enrolments ue WHERE d.kind = 'unenrolled'"
                " AND ue.instance_id = d.instance_id AND ue.user_id = d.user_id)"
            )

    def _write_roles_and_groups(self, total: Outcome) -> None:
        # Moodle's rule: when the last enrolment in a course goes, so do the user's unowned
        # roles and group memberships there. Found first, then removed with the owned ones.
        if total.unenrolled:
            self.roles += (
                (instance_id, user_id, role_id, 0, 0)
                for instance_id, user_id, role_id in self.rows(
                    "INSERT INTO ek_roles (instance_id, user_id, role_id, added, reason, owned)"
                    " SELECT last.instance_id, ra.user_id, ra.role_id, 0, d.reason, 0 FROM "
                    + _LAST_UNENROLMENTS
                    + " CROSS JOIN role_assignments ra WHERE ra.user_id = last.user_id"
                    " AND ra.contextlevel = :course_level AND ra.instanceid = last.course_id"
                    " AND ra.component = ''"
                    + _NOT_IN_COURSE.format(a="ra")
                    + " RETURNING instance_id, user_id, role_id"
                )
            )
            self.sql(
                "INSERT INTO ek_groups (instance_id, user_id, group_id, added, reason)"
                " SELECT last.instance_id, gm.user_id, gm.group_id, 0, d.reason FROM "
                + _LAST_UNENROLMENTS
                + " CROSS JOIN group_members gm WHERE gm.user_id = last.user_id"
                " AND gm.component = ''"
                " AND gm.group_id IN (SELECT id FROM groups WHERE course_id = last.course_id)"
                + _NOT_IN_COURSE.format(a="gm")
            )
        removed = []
        if total.roles_removed:
            removed.append(
                "SELECT ra.id FROM ek_roles r "
                + _INST.format(a="r")
                + " CROSS JOIN role_assignments ra WHERE r.added = 0 AND r.owned = 1"
                " AND ra.user_id = r.user_id AND ra.role_id = r.role_id"
                " AND ra.component = i.component AND ra.itemid = r.instance_id"
            )
        if total.unenrolled:
            removed.append(
                "SELECT ra.id FROM ek_roles r "
                + _INST.format(a="r")
                + " CROSS JOIN role_assignments ra WHERE r.added = 0 AND r.owned = 0"
                " AND ra.user_id = r.user_id AND ra.role_id = r.role_id"
                " AND ra.contextlevel = :course_level AND ra.instanceid = i.course_id"
                " AND ra.component = ''"
            )
        if removed:
            self.sql(
                "DELETE FROM role_assignments WHERE id IN (" + " UNION ALL ".join(removed) + ")"
            )
        if total.groups_removed:
            self.sql(
                "DELETE FROM group_members WHERE (group_id, user_id, component, itemid) IN"
                " (SELECT g.group_id, g.user_id, i.component, g.instance_id FROM ek_groups g "
                + _INST.format(a="g")
                + " WHERE g.added = 0)"
            )
        if total.unenrolled or total.groups_removed:
            self.sql(
                "DELETE FROM group_members WHERE component = '' AND (group_id, user_id) IN"
                " (SELECT group_id, user_id FROM ek_groups WHERE added = 0)"
            )
        if total.roles_added:
            self.sql(
                "INSERT INTO role_assignments (role_id, user_id, contextlevel, instanceid,"
                " component, itemid, timemodified)"
                " SELECT r.role_id, r.user_id, :course_level, i.course_id, i.component,"
                " r.instance_id, :now FROM ek_roles r " + _INST.format(a="r") + " WHERE r.added = 1"
            )
        if total.groups_added:
            self.sql(
                "INSERT INTO group_members (group_id, user_id, component, itemid, timeadded)"
                " SELECT g.group_id, g.user_id, i.component, g.instance_id, :now FROM ek_groups g "
                + _INST.format(a="g")
                + " WHERE g.added = 1"
            )

    def _log(self, total: Outcome) -> None:
        """One log row per change, one statement for the whole batch: the enrolments first,
        then the roles, then the groups."""
        parts = []
        if total.changed_users:
            parts.append(
                "SELECT :now, CASE d.kind WHEN 'enrolled' THEN 'user_enrolled'"
                "  WHEN 'unenrolled' THEN 'user_unenrolled' ELSE 'user_enrolment_updated' END,"
                " i.component, i.course_id, d.user_id, d.instance_id, :origin,"
                " CASE WHEN d.kind = 'suspended' THEN 'suspended: ' ELSE '' END"
                "  || COALESCE(d.reason, i.reason) FROM ek_diff d " + _INST.format(a="d")
            )
        if total.roles_added or total.roles_removed or total.unenrolled:
            parts.append(
                "SELECT :now, CASE WHEN e.added = 1 THEN 'role_assigned' ELSE 'role_unassigned' END,"
                " i.component, i.course_id, e.user_id, e.instance_id, :origin,"
                " 'role ' || COALESCE(r.shortname, CAST(e.role_id AS VARCHAR(20))) || ': '"
                " || COALESCE(e.reason, i.reason)"
                " FROM ek_roles e " + _INST.format(a="e") + " LEFT JOIN roles r ON r.id = e.role_id"
            )
        if total.groups_added or total.groups_removed or total.unenrolled:
            parts.append(
                "SELECT :now, CASE WHEN e.added = 1 THEN 'group_member_added'"
                "  ELSE 'group_member_removed' END, i.component, i.course_id, e.user_id,"
                " e.instance_id, :origin,"
                " 'group ' || COALESCE(g.name, CAST(e.group_id AS VARCHAR(20))) || ': '"
                " || COALESCE(e.reason, i.reason)"
                " FROM ek_groups e "
                + _INST.format(a="e")
                + " LEFT JOIN groups g ON g.id = e.group_id"
            )
        if parts:
            self.sql(
                "INSERT INTO log (time, event, component, course_id, user_id, instance_id, origin,"
                " reason) " + " UNION ALL ".join(parts)
            )

    def _notify(self, written: list[Outcome]) -> None:
        """Fire the change hooks once for the batch, one record per instance that changed.
        Everything was read from the temporary tables before: a hook's own plans reuse them."""
        items = {instance.id: (instance, plan) for instance, plan, _ in self.items}
        where = {  # of the instances written: their course and component
            outcome.instance_id: (
                items[outcome.instance_id][0].course_id,
                items[outcome.instance_id][0].component,
            )
            for outcome in written
        }
        roles = self.roles if len(where) == len(items) else [r for r in self.roles if r[0] in where]
        roles.sort()

        def role_change(instance_id, user_id, role_id, added, owned) -> RoleChange:
            course_id, component = where[instance_id]
            return RoleChange(
                user_id=user_id,
                role_id=role_id,
                contextlevel=COURSE,
                instanceid=course_id,
                added=bool(added),
                component=component if owned else "",
                itemid=instance_id if owned else 0,
            )

        # Built when a hook reads them: the ones installed everywhere often do not.
        role_changes = RoleChanges(roles, role_change)
        changes = tuple(
            EnrolmentChanges(
                instance_id=outcome.instance_id,
                course_id=items[outcome.instance_id][0].course_id,
                method=items[outcome.instance_id][0].method,
                origin=self.site.origin,
                reason=items[outcome.instance_id][1].reason,
                enrolled=tuple(outcome.enrolled),
                updated=tuple(outcome.updated),
                suspended=tuple(outcome.suspended),
                unenrolled=tuple(outcome.unenrolled),
            )
            for outcome in written
            if outcome.changed_users
        )
        if changes:
            self.site.plugins.enrolments_changed(site=self.site, changes=changes)
        if role_changes:
            self.site.plugins.role_assignments_changed(site=self.site, changes=role_changes)


def _bounded(selection: Select) -> bool:
    """Whether a selection has its own ORDER BY, LIMIT or OFFSET (it cannot join a UNION)."""
    return bool(selection._order_by_clauses) or any(
        clause is not None
        for clause in (selection._limit_clause, selection._offset_clause, selection._fetch_clause)
    )


def _typed(rows) -> Select:
    """The columns of a ``UNION ALL`` of desired states with their types: PostgreSQL types a
    column that is NULL in every branch (no group) as text, which an integer column refuses."""
    types = {"timestart": BigInteger, "timeend": BigInteger}
    return select(
        *(
            cast(rows.c[name], types.get(name, Integer)).label(name)
            for name in (*DESIRED_COLUMNS, "instance_id")
        )
    )


def _collapse(
    changes: Sequence[Change], default_role: int | None, removal: str
) -> tuple[dict, dict, dict, dict]:
    """One plan's explicit changes, collapsed: per user the last enrolment-level change wins
    (``want``: timestart, timeend, status, reason; ``drop``: action, reason), per user and role
    the last role-level one, per user and group the last group-level one (add_it, reason)."""
    want: dict[int, tuple] = {}
    drop: dict[int, tuple] = {}
    roles: dict[tuple[int, int], tuple] = {}
    groups: dict[tuple[int, int], tuple] = {}
    for change in changes:
        uid, reason = change.user_id, change.reason or None
        if change.op == UNASSIGN:
            if change.role_id is not None:
                roles[uid, change.role_id] = (0, reason)
            continue
        if change.op == LEAVE:
            if change.group_id is not None:
                groups[uid, change.group_id] = (0, reason)
            continue
        want.pop(uid, None)
        drop.pop(uid, None)
        if change.op == ENROL:
            want[uid] = (change.timestart, change.timeend, change.status, reason)
            role = change.role_id if change.role_id is not None else default_role
            if role is not None:
                roles[uid, role] = (1, reason)
            if change.group_id is not None:
                groups[uid, change.group_id] = (1, reason)
        elif change.op == SUSPEND_OP:
            drop[uid] = (SUSPEND, reason)
        elif change.op == UNENROL_OP:
            drop[uid] = (UNENROL, reason)
        else:
            drop[uid] = (removal, reason)
            if change.role_id is not None:  # a flat-file ``del``: that role goes too
                roles[uid, change.role_id] = (0, reason)
    # Only an enrolment adds a role or a group: not for a user a later change unenrolled.
    roles = {key: value for key, value in roles.items() if not value[0] or key[0] in want}
    groups = {key: value for key, value in groups.items() if not value[0] or key[0] in want}
    return want, drop, roles, groups


__all__ = ["Change", "DESIRED_COLUMNS", "Engine", "Outcome", "Plan"]
