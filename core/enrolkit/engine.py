"""The engine: plan -> diff -> guard -> apply -> log -> notify. The only writer of enrolments.

A method describes what it wants as a :class:`Plan`, either

* a **desired state** (``desired``): every user who should be enrolled in the instance, with role,
  dates, status and group, as a SQL selection (or rows). Whoever is enrolled and not selected gets
  the removal action. Roles and groups the instance owns are made to match exactly. Or
* **explicit changes** (``changes``): enrol, suspend, unenrol, remove (the removal action),
  unassign a role or leave a group, for the users named; nobody else is touched.

The engine loads the plan into temporary tables, computes the difference with SQL, checks the
mass-removal guard, writes in sets inside one transaction, logs every change and fires the change
hooks once per plan. Dry-run computes the same difference and writes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from sqlalchemy import Select, column, func, insert, select, table, text

from .changes import EnrolmentChanges, RoleChange
from .errors import EnrolkitError, NotFound
from .locks import lock_instances, retrying
from .methods import REMOVAL_ACTIONS, SUSPEND, UNENROL
from .models import ACTIVE, COURSE, EnrolInstance, HeldPlan, UserEnrolment

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

#: On PostgreSQL, a plan changing at least this many rows of a table refreshes its statistics.
ANALYZE_ROWS = 1000

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


# Temporary tables, one set per database connection. DDL is portable SQLite/PostgreSQL.
_TEMP_DDL = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS ek_plan (user_id INTEGER NOT NULL, role_id INTEGER,"
    " timestart BIGINT, timeend BIGINT, status INTEGER, group_id INTEGER)",
    "CREATE TEMPORARY TABLE IF NOT EXISTS ek_scope (user_id INTEGER PRIMARY KEY)",
    "CREATE TEMPORARY TABLE IF NOT EXISTS ek_want (user_id INTEGER PRIMARY KEY, timestart BIGINT,"
    " timeend BIGINT, status INTEGER NOT NULL, reason TEXT)",
    "CREATE TEMPORARY TABLE IF NOT EXISTS ek_drop (user_id INTEGER PRIMARY KEY,"
    " action VARCHAR(20) NOT NULL, reason TEXT)",
    "CREATE TEMPORARY TABLE IF NOT EXISTS ek_rp (user_id INTEGER NOT NULL, role_id INTEGER NOT NULL,"
    " add_it INTEGER NOT NULL, reason TEXT)",
    "CREATE TEMPORARY TABLE IF NOT EXISTS ek_gp (user_id INTEGER NOT NULL, group_id INTEGER NOT NULL,"
    " add_it INTEGER NOT NULL, reason TEXT)",
    "CREATE TEMPORARY TABLE IF NOT EXISTS ek_diff (user_id INTEGER NOT NULL,"
    " kind VARCHAR(12) NOT NULL, reason TEXT)",
    "CREATE TEMPORARY TABLE IF NOT EXISTS ek_roles (user_id INTEGER NOT NULL,"
    " role_id INTEGER NOT NULL, added INTEGER NOT NULL, reason TEXT, owned INTEGER DEFAULT 1)",
    "CREATE TEMPORARY TABLE IF NOT EXISTS ek_groups (user_id INTEGER NOT NULL,"
    " group_id INTEGER NOT NULL, added INTEGER NOT NULL, reason TEXT)",
)
_TEMP_TABLES = (
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
# lookups by user the diff is quadratic.
_TEMP_INDEXES = (
    "CREATE INDEX IF NOT EXISTS ek_plan_user ON ek_plan (user_id, role_id)",
    "CREATE INDEX IF NOT EXISTS ek_diff_user ON ek_diff (user_id, kind)",
    "CREATE INDEX IF NOT EXISTS ek_rp_user ON ek_rp (user_id, role_id)",
    "CREATE INDEX IF NOT EXISTS ek_gp_user ON ek_gp (user_id, group_id)",
    "CREATE INDEX IF NOT EXISTS ek_roles_user ON ek_roles (user_id, role_id)",
    "CREATE INDEX IF NOT EXISTS ek_groups_user ON ek_groups (user_id, group_id)",
)

#: Key in a database connection's ``info``: its temporary tables exist.
TEMP_TABLES_READY = "enrolkit_temp_tables"
#: Key in a database connection's ``info``: the temporary tables that may hold rows.
TEMP_TABLES_DIRTY = "enrolkit_temp_dirty"

ek_plan = table("ek_plan", *(column(name) for name in DESIRED_COLUMNS))
ek_want = table(
    "ek_want",
    column("user_id"),
    column("timestart"),
    column("timeend"),
    column("status"),
    column("reason"),
)
ek_scope = table("ek_scope", column("user_id"))
ek_drop = table("ek_drop", column("user_id"), column("action"), column("reason"))
ek_rp = table("ek_rp", column("user_id"), column("role_id"), column("add_it"), column("reason"))
ek_gp = table("ek_gp", column("user_id"), column("group_id"), column("add_it"), column("reason"))


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

    def apply(self, plan: Plan, *, dry_run: bool = False, force: bool = False) -> Outcome:
        """Apply one plan: a batch of one (see :meth:`apply_many`).

        Apply ``plan`` in one transaction (a savepoint inside an outer one), as the only
        writer of its instance: the instance's lock (:func:`~enrolkit.locks.lock_instances`) is
        taken before the plan's source is read, so a concurrent plan's changes are either all
        seen or not yet begun. A plan that is its own transaction is run again when the database
        ends it with a deadlock or a serialisation failure.

        ``dry_run`` computes the outcome and writes nothing. ``force`` skips the guard (used when
        an admin approves a held plan).
        """
        site = self.site
        instance = site.session.get(EnrolInstance, plan.instance_id)
        if instance is None:
            raise NotFound(f"no enrolment instance {plan.instance_id}")
        method = site.plugins.method(instance.method)
        removal = plan.removal or method.removal_action(site, instance)
        if dry_run:
            return self._apply(instance, plan, removal, dry_run=True, force=force)
        return retrying(
            site, lambda: self._apply(instance, plan, removal, dry_run=False, force=force)
        )

    def apply_many(
        self, plans: Sequence[Plan], *, dry_run: bool = False, force: bool = False
    ) -> list[Outcome]:
        """Apply several plans, at most one per instance, in one transaction; their outcomes in
        the order of ``plans``.

        Every instance's lock is taken first, in ascending order. The guard decides per
        instance: a held plan is stored and the others are written. ``dry_run`` and ``force``
        are :meth:`apply`'s. A batch the database ends with a deadlock or a serialisation
        failure is run again as a whole.
        """
        plans = list(plans)
        ids = [plan.instance_id for plan in plans]
        if len(set(ids)) != len(ids):
            raise ValueError("a batch holds at most one plan per instance; merge their changes")
        if not plans:
            return []
        site = self.site
        found = {
            instance.id: instance
            for instance in site.session.scalars(
                select(EnrolInstance).where(EnrolInstance.id.in_(ids))
            )
        }
        missing = [instance_id for instance_id in ids if instance_id not in found]
        if missing:
            raise NotFound(f"no enrolment instance {missing[0]}")
        removals = [
            plan.removal
            or site.plugins.method(found[plan.instance_id].method).removal_action(
                site, found[plan.instance_id]
            )
            for plan in plans
        ]

        def attempt() -> list[Outcome]:
            with site.atomic():
                lock_instances(site.session, ids)
                return [
                    self._apply(
                        found[plan.instance_id], plan, removal, dry_run=dry_run, force=force
                    )
                    for plan, removal in zip(plans, removals, strict=True)
                ]

        return attempt() if dry_run else retrying(site, attempt)

    def _apply(
        self, instance: EnrolInstance, plan: Plan, removal: str, *, dry_run: bool, force: bool
    ) -> Outcome:
        """One attempt at ``plan``: lock the instance, then read its source, diff and write."""
        site = self.site
        with site.atomic():
            lock_instances(site.session, [instance.id])
            run = _Run(site, instance, plan, removal)
            if plan.capacity is not None:
                run.lock_instance()
            run.load()
            run.diff()
            if plan.capacity is not None:
                run.fit(plan.capacity)
            outcome = run.outcome(dry_run=dry_run)
            if dry_run:
                return outcome
            if plan.guarded and not force and run.trips_guard():
                outcome.held_plan_id = run.hold()
                return outcome
            run.write()
            if plan.desired is not None and plan.users is None:
                run.supersede_held()
        return outcome

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


class _Run:
    """One application of one plan: the SQL steps, in order."""

    def __init__(self, site: Site, instance: EnrolInstance, plan: Plan, removal: str) -> None:
        self.site = site
        self.session = site.session
        self.instance = instance
        self.plan = plan
        self.removal = removal
        self.now = site.now()
        #: Users a capacity left out (see :meth:`fit`).
        self.full: list[int] = []
        self.params = {
            "instance": instance.id,
            "course": instance.course_id,
            "component": instance.component,
            "now": self.now,
            "origin": site.origin,
            "reason": plan.reason,
            "course_level": COURSE,
        }

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

    def _insert_rows(self, table_name: str, rows: list[dict]) -> None:
        """executemany of plain rows into one of the temporary tables."""
        names = list(rows[0])
        self._driver(
            f"INSERT INTO {table_name} ({', '.join(names)})"
            f" VALUES ({', '.join(':' + name for name in names)})",
            rows,
        )

    # --- 1. load the plan into temporary tables ---------------------------------------------

    def load(self) -> None:
        # The temporary tables live as long as the database connection: create them once. A
        # rollback may undo their creation, so db.py forgets the flag on every rollback.
        info = self.session.connection().info
        if not info.get(TEMP_TABLES_READY):
            for ddl in _TEMP_DDL + _TEMP_INDEXES:
                self.session.execute(text(ddl))
            info[TEMP_TABLES_READY] = True
            info[TEMP_TABLES_DIRTY] = set(_TEMP_TABLES)
        # Only the tables an earlier plan filled need emptying. A table a big plan filled is
        # truncated: that frees its pages and forgets its statistics, which would otherwise
        # mislead the planner for the small plans after it.
        dirty = info.get(TEMP_TABLES_DIRTY, set(_TEMP_TABLES))
        big = self._big_tables()
        if big:
            self.session.execute(text(f"TRUNCATE {', '.join(sorted(big))}"))
        for name in _TEMP_TABLES:
            if name in dirty and name not in big:
                self.session.execute(text(f"DELETE FROM {name}"))
        big.clear()
        self.dirty = info[TEMP_TABLES_DIRTY] = set()
        if self.plan.desired is not None:
            self._load_desired()
        else:
            self._load_changes()
        self._measure()
        self._analyze("ek_drop", "ek_rp", "ek_gp")

    def _measure(self) -> None:
        """How many rows each part of the plan has: statements with nothing to work on are
        skipped (a one-user plan runs a third of them), and the next plan knows what to empty."""
        (want, drop, rp_add, rp_del, gp_add, gp_del, planned, scoped) = self.session.execute(
            text(
                "SELECT (SELECT COUNT(*) FROM ek_want), (SELECT COUNT(*) FROM ek_drop),"
                " (SELECT COUNT(*) FROM ek_rp WHERE add_it = 1),"
                " (SELECT COUNT(*) FROM ek_rp WHERE add_it = 0),"
                " (SELECT COUNT(*) FROM ek_gp WHERE add_it = 1),"
                " (SELECT COUNT(*) FROM ek_gp WHERE add_it = 0),"
                " (SELECT COUNT(*) FROM ek_plan), (SELECT COUNT(*) FROM ek_scope)"
            )
        ).one()
        self.size = {
            "want": want,
            "drop": drop,
            "rp_add": rp_add,
            "rp_del": rp_del,
            "gp_add": gp_add,
            "gp_del": gp_del,
        }
        filled = {
            "ek_want": want,
            "ek_drop": drop,
            "ek_rp": rp_add + rp_del,
            "ek_gp": gp_add + gp_del,
            "ek_plan": planned,
            "ek_scope": scoped,
        }
        # The diff tables are filled later, possibly by this plan: count them dirty now, so a
        # plan a change hook applies in between empties them.
        self.dirty.update({"ek_diff", "ek_roles", "ek_groups"})
        self.dirty.update(name for name, count in filled.items() if count)

    def _big_tables(self) -> set[str]:
        """Temporary tables of this connection analyzed for a big plan (PostgreSQL only)."""
        return self.session.connection().info.setdefault("enrolkit_big_temp_tables", set())

    @cached_property
    def _small(self) -> bool:
        """Whether the plan is too small to fill the temporary tables past ``ANALYZE_ROWS``
        (the explicit changes of a login, or a sync limited to the users a hook names): then
        they are never counted, which saves three queries per plan."""
        plan = self.plan
        bound = len(plan.changes) if plan.desired is None else None
        if plan.users is not None:
            bound = len(plan.users)
        return bound is not None and 2 * bound < ANALYZE_ROWS

    def _analyze(self, *tables: str) -> None:
        """On PostgreSQL, give the planner the sizes of the temporary tables of a big plan:
        autovacuum never analyzes them, and the guesses it plans with otherwise make the diff
        quadratic."""
        if self.session.get_bind().dialect.name != "postgresql" or self._small:
            return
        size = self.session.scalar(
            text("SELECT (SELECT COUNT(*) FROM ek_want) + (SELECT COUNT(*) FROM ek_drop)")
        )
        if size < ANALYZE_ROWS:
            return
        for name in tables:
            self.session.execute(text(f"ANALYZE {name}"))
        self._big_tables().update(tables)

    def _load_desired(self) -> None:
        desired, scope = self.plan.desired, self.plan.users
        if scope is not None:
            ids = sorted(set(scope))
            if ids:
                self.session.execute(insert(ek_scope), [{"user_id": uid} for uid in ids])
            if isinstance(desired, Select):
                # Filter on the selection's own user column, so the database reads only those
                # users' rows (through its indexes) instead of the whole source.
                user = desired.selected_columns["user_id"]
                desired = desired.where(
                    getattr(user, "element", user).in_(select(ek_scope.c.user_id))
                )
            else:
                wanted = set(ids)
                desired = [row for row in desired if row[0] in wanted]
        if isinstance(desired, Select):
            self.session.execute(insert(ek_plan).from_select(list(DESIRED_COLUMNS), desired))
        elif desired:
            self.session.execute(
                insert(ek_plan), [dict(zip(DESIRED_COLUMNS, row, strict=True)) for row in desired]
            )
        # One enrolment per user: active if any row is, earliest start, latest end (open wins).
        self.sql(
            "INSERT INTO ek_want (user_id, timestart, timeend, status, reason)"
            " SELECT user_id, MIN(COALESCE(timestart, 0)),"
            " CASE WHEN MIN(COALESCE(timeend, 0)) = 0 THEN 0 ELSE MAX(timeend) END,"
            " MIN(COALESCE(status, 0)), NULL FROM ek_plan GROUP BY user_id"
        )
        self._analyze("ek_plan", "ek_want")
        self.sql(
            "INSERT INTO ek_drop (user_id, action, reason)"
            " SELECT ue.user_id, :removal, NULL FROM user_enrolments ue"
            " WHERE ue.instance_id = :instance"
            " AND NOT EXISTS (SELECT 1 FROM ek_want w WHERE w.user_id = ue.user_id)"
            + (" AND ue.user_id IN (SELECT user_id FROM ek_scope)" if scope is not None else ""),
            removal=self.removal,
        )
        # Owned roles and groups match the selection exactly: a wanted user keeps only those
        # the selection gives; a user neither wanted nor enrolled keeps none (an orphan that a
        # crash or an older race left: nothing else would ever remove it).
        in_scope = " AND {a}.user_id IN (SELECT user_id FROM ek_scope)" if scope is not None else ""
        self.sql(
            "INSERT INTO ek_rp (user_id, role_id, add_it, reason)"
            " SELECT DISTINCT user_id, role_id, 1, NULL FROM ek_plan WHERE role_id IS NOT NULL"
        )
        self.sql(
            "INSERT INTO ek_rp (user_id, role_id, add_it, reason)"
            " SELECT ra.user_id, ra.role_id, 0, NULL FROM role_assignments ra"
            " WHERE ra.component = :component AND ra.itemid = :instance"
            + in_scope.format(a="ra")
            + " AND CASE WHEN EXISTS (SELECT 1 FROM ek_want w WHERE w.user_id = ra.user_id)"
            " THEN NOT EXISTS (SELECT 1 FROM ek_plan p"
            "  WHERE p.user_id = ra.user_id AND p.role_id = ra.role_id)"
            " ELSE NOT EXISTS (SELECT 1 FROM user_enrolments ue"
            "  WHERE ue.instance_id = :instance AND ue.user_id = ra.user_id) END"
        )
        self.sql(
            "INSERT INTO ek_gp (user_id, group_id, add_it, reason)"
            " SELECT DISTINCT user_id, group_id, 1, NULL FROM ek_plan WHERE group_id IS NOT NULL"
        )
        self.sql(
            "INSERT INTO ek_gp (user_id, group_id, add_it, reason)"
            " SELECT gm.user_id, gm.group_id, 0, NULL FROM group_members gm"
            " WHERE gm.component = :component AND gm.itemid = :instance"
            + in_scope.format(a="gm")
            + " AND CASE WHEN EXISTS (SELECT 1 FROM ek_want w WHERE w.user_id = gm.user_id)"
            " THEN NOT EXISTS (SELECT 1 FROM ek_plan p"
            "  WHERE p.user_id = gm.user_id AND p.group_id = gm.group_id)"
            " ELSE NOT EXISTS (SELECT 1 FROM user_enrolments ue"
            "  WHERE ue.instance_id = :instance AND ue.user_id = gm.user_id) END"
        )

    def _load_changes(self) -> None:
        """Collapse explicit changes: per user the last enrolment-level change wins, per user and
        role the last role-level one; then load them like a desired state restricted to them."""
        default_role = self.instance.role_id
        want: dict[int, dict] = {}
        drop: dict[int, dict] = {}
        roles: dict[tuple[int, int], dict] = {}
        groups: dict[tuple[int, int], dict] = {}
        for change in self.plan.changes:
            uid, reason = change.user_id, change.reason or None
            if change.op == UNASSIGN:
                if change.role_id is not None:
                    roles[uid, change.role_id] = {"add_it": 0, "reason": reason}
                continue
            if change.op == LEAVE:
                if change.group_id is not None:
                    groups[uid, change.group_id] = {"add_it": 0, "reason": reason}
                continue
            want.pop(uid, None)
            drop.pop(uid, None)
            if change.op == ENROL:
                want[uid] = {
                    "timestart": change.timestart,
                    "timeend": change.timeend,
                    "status": change.status,
                    "reason": reason,
                }
                role = change.role_id if change.role_id is not None else default_role
                if role is not None:
                    roles[uid, role] = {"add_it": 1, "reason": reason}
                if change.group_id is not None:
                    groups[uid, change.group_id] = {"add_it": 1, "reason": reason}
            elif change.op == SUSPEND_OP:
                drop[uid] = {"action": SUSPEND, "reason": reason}
            elif change.op == UNENROL_OP:
                drop[uid] = {"action": UNENROL, "reason": reason}
            else:
                drop[uid] = {"action": self.removal, "reason": reason}
                if change.role_id is not None:  # a flat-file ``del``: that role goes too
                    roles[uid, change.role_id] = {"add_it": 0, "reason": reason}
        if want:
            self._insert_rows("ek_want", [{"user_id": u, **v} for u, v in want.items()])
            self._analyze("ek_want")
        if drop:
            self._insert_rows("ek_drop", [{"user_id": u, **v} for u, v in drop.items()])
        if roles:
            self._insert_rows(
                "ek_rp", [{"user_id": u, "role_id": r, **v} for (u, r), v in roles.items()]
            )
        if groups:
            self._insert_rows(
                "ek_gp", [{"user_id": u, "group_id": g, **v} for (u, g), v in groups.items()]
            )

    # --- 2. the difference, in SQL ------------------------------------------------------------

    def diff(self) -> None:
        size = self.size
        if size["want"]:
            self._diff_wanted()
        if size["drop"]:
            self._diff_dropped()
        if size["want"] and size["rp_add"]:
            self._diff_roles_added()
        if size["rp_del"] or size["drop"]:
            self._diff_roles_removed()
        if size["want"] and size["gp_add"]:
            self._diff_groups_added()
        if size["gp_del"] or size["drop"]:
            self._diff_groups_removed()
        self._analyze("ek_diff", "ek_roles", "ek_groups")

    def _diff_wanted(self) -> None:
        self.sql(
            "INSERT INTO ek_diff (user_id, kind, reason)"
            " SELECT w.user_id, 'enrolled', w.reason FROM ek_want w WHERE NOT EXISTS"
            " (SELECT 1 FROM user_enrolments ue"
            "  WHERE ue.instance_id = :instance AND ue.user_id = w.user_id)"
        )
        self.sql(
            "INSERT INTO ek_diff (user_id, kind, reason)"
            " SELECT w.user_id,"
            " CASE WHEN w.status = 1 AND ue.status = 0 THEN 'suspended' ELSE 'updated' END, w.reason"
            " FROM ek_want w CROSS JOIN user_enrolments ue"
            " WHERE ue.instance_id = :instance AND ue.user_id = w.user_id"
            " AND (ue.status <> w.status"
            " OR (w.timestart IS NOT NULL AND ue.timestart <> w.timestart)"
            " OR (w.timeend IS NOT NULL AND ue.timeend <> w.timeend))"
        )

    def _diff_dropped(self) -> None:
        self.sql(
            "INSERT INTO ek_diff (user_id, kind, reason)"
            " SELECT d.user_id, CASE WHEN d.action = 'unenrol' THEN 'unenrolled' ELSE 'suspended' END,"
            " d.reason FROM ek_drop d CROSS JOIN user_enrolments ue"
            " WHERE ue.instance_id = :instance AND ue.user_id = d.user_id"
            " AND (d.action = 'unenrol' OR (d.action IN ('suspend', 'suspend_noroles')"
            " AND ue.status = 0))"
        )

    # Roles: additions for users who stay enrolled (only an enrolment adds a role); removals
    # asked for, or implied by an unenrolment or a suspension that removes roles.
    def _diff_roles_added(self) -> None:
        self.sql(
            "INSERT INTO ek_roles (user_id, role_id, added, reason)"
            " SELECT p.user_id, p.role_id, 1, p.reason FROM ek_rp p"
            " JOIN ek_want w ON w.user_id = p.user_id"
            " WHERE p.add_it = 1"
            " AND NOT EXISTS (SELECT 1 FROM role_assignments ra WHERE ra.user_id = p.user_id"
            "  AND ra.role_id = p.role_id AND ra.component = :component AND ra.itemid = :instance)"
        )

    def _diff_roles_removed(self) -> None:
        self.sql(
            "INSERT INTO ek_roles (user_id, role_id, added, reason)"
            " SELECT ra.user_id, ra.role_id, 0, COALESCE(p.reason, d.reason)"
            " FROM (SELECT user_id FROM ek_rp WHERE add_it = 0 UNION SELECT user_id FROM ek_drop"
            "  WHERE action IN ('unenrol', 'suspend_noroles')) who"
            " CROSS JOIN role_assignments ra"
            " LEFT JOIN ek_rp p ON p.user_id = ra.user_id AND p.role_id = ra.role_id AND p.add_it = 0"
            " LEFT JOIN ek_drop d ON d.user_id = ra.user_id"
            "  AND d.action IN ('unenrol', 'suspend_noroles')"
            " WHERE ra.user_id = who.user_id AND ra.component = :component AND ra.itemid = :instance"
            " AND (p.user_id IS NOT NULL OR d.user_id IS NOT NULL)"
        )

    def _diff_groups_added(self) -> None:
        self.sql(
            "INSERT INTO ek_groups (user_id, group_id, added, reason)"
            " SELECT p.user_id, p.group_id, 1, p.reason FROM ek_gp p"
            " WHERE p.add_it = 1 AND EXISTS (SELECT 1 FROM ek_want w WHERE w.user_id = p.user_id)"
            " AND NOT EXISTS (SELECT 1 FROM group_members gm"
            "  WHERE gm.user_id = p.user_id AND gm.group_id = p.group_id)"
        )

    def _diff_groups_removed(self) -> None:
        self.sql(
            "INSERT INTO ek_groups (user_id, group_id, added, reason)"
            " SELECT gm.user_id, gm.group_id, 0, COALESCE(p.reason, d.reason)"
            " FROM (SELECT user_id FROM ek_gp WHERE add_it = 0 UNION SELECT user_id FROM ek_drop"
            "  WHERE action = 'unenrol') who"
            " CROSS JOIN group_members gm"
            " LEFT JOIN ek_gp p ON p.user_id = gm.user_id AND p.group_id = gm.group_id"
            "  AND p.add_it = 0"
            " LEFT JOIN ek_drop d ON d.user_id = gm.user_id AND d.action = 'unenrol'"
            " WHERE gm.user_id = who.user_id AND gm.component = :component"
            " AND gm.itemid = :instance"
            " AND (p.user_id IS NOT NULL OR d.user_id IS NOT NULL)"
        )

    # --- 2b. capacity -----------------------------------------------------------------------

    def lock_instance(self) -> None:
        """Serialise the plans of this instance that count its places: on PostgreSQL a row lock
        on the instance, held to the end of the transaction (the diff that follows reads the
        enrolments committed by the plan that held it before); SQLite's write transaction is
        already the only writer of the database."""
        if self.session.get_bind().dialect.name == "postgresql":
            self.sql("SELECT id FROM enrol_instances WHERE id = :instance FOR UPDATE")

    def fit(self, capacity: int) -> None:
        """Keep the new enrolments that fit in ``capacity`` (counting the enrolments there, less
        those this plan unenrols), lowest user id first; the rest go to ``self.full``, and
        their roles and groups with them."""
        new = [
            row[0]
            for row in self.rows(
                "SELECT user_id FROM ek_diff WHERE kind = 'enrolled' ORDER BY user_id"
            )
        ]
        if not new:
            return
        taken = self.rows("SELECT COUNT(*) FROM user_enrolments WHERE instance_id = :instance")
        freed = self.rows("SELECT COUNT(*) FROM ek_diff WHERE kind = 'unenrolled'")
        room = max(0, capacity - taken[0][0] + freed[0][0])
        if room >= len(new):
            return
        self.full = new[room:]
        cutoff = new[room - 1] if room else -1
        self.sql("DELETE FROM ek_diff WHERE kind = 'enrolled' AND user_id > :cutoff", cutoff=cutoff)
        not_enrolled = (
            " user_id > :cutoff AND NOT EXISTS (SELECT 1 FROM user_enrolments ue"
            " WHERE ue.instance_id = :instance AND ue.user_id = {name}.user_id)"
        )
        for name in ("ek_roles", "ek_groups"):
            self.sql(
                f"DELETE FROM {name} WHERE added = 1 AND" + not_enrolled.format(name=name),
                cutoff=cutoff,
            )
        self.sql("DELETE FROM ek_want WHERE" + not_enrolled.format(name="ek_want"), cutoff=cutoff)

    def outcome(self, *, dry_run: bool) -> Outcome:
        result = Outcome(instance_id=self.instance.id, dry_run=dry_run, full=list(self.full))
        for user_id, kind in self.rows("SELECT user_id, kind FROM ek_diff ORDER BY user_id"):
            getattr(result, kind).append(user_id)
        for added, count in self.rows("SELECT added, COUNT(*) FROM ek_roles GROUP BY added"):
            if added:
                result.roles_added = count
            else:
                result.roles_removed = count
        for added, count in self.rows("SELECT added, COUNT(*) FROM ek_groups GROUP BY added"):
            if added:
                result.groups_added = count
            else:
                result.groups_removed = count
        self.result = result
        return result

    # --- 3. the guard -------------------------------------------------------------------------

    def trips_guard(self) -> bool:
        removals = len(self.result.unenrolled) + self.session.scalar(
            text(
                "SELECT COUNT(*) FROM ek_diff d JOIN ek_drop x ON x.user_id = d.user_id"
                " WHERE d.kind = 'suspended'"
            )
        )
        if not removals:
            return False
        total = self.session.scalar(
            select(func.count()).where(UserEnrolment.instance_id == self.instance.id)
        )
        share = float(self.site.get_config("core", "guard_share", GUARD_SHARE))
        minimum = int(self.site.get_config("core", "guard_min", GUARD_MIN))
        self.guard_reason = (
            f"would remove {removals} of {total} enrolments "
            f"(limit: more than {share:.0%} and at least {minimum})"
        )
        return removals > share * total and removals >= minimum

    def hold(self) -> int:
        """Store the plan, as rows, for an admin. A plan of the whole instance replaces an older
        held plan of it; one limited to some users stands beside it."""
        if self.plan.users is None:
            self._supersede("superseded")
        if self.plan.desired is not None:
            rows = [
                list(row)
                for row in self.rows(
                    "SELECT user_id, role_id, timestart, timeend, status, group_id FROM ek_plan"
                )
            ]
        else:
            raise EnrolkitError("only desired-state plans can be held; use guard=False")
        held = HeldPlan(
            instance_id=self.instance.id,
            origin=self.site.origin,
            reason=self.plan.reason,
            summary={**self.result.counts(), "why": self.guard_reason},
            payload={
                "rows": rows,
                "removal": self.removal,
                "users": sorted(set(self.plan.users)) if self.plan.users is not None else None,
                "capacity": self.plan.capacity,
                "unenrolled": self.result.unenrolled,
                "suspended": self.result.suspended,
            },
            timecreated=self.now,
        )
        self.session.add(held)
        self.session.flush()
        self.sql(
            "INSERT INTO log (time, event, component, course_id, user_id, instance_id, origin,"
            " reason) VALUES (:now, 'plan_held', :component, :course, NULL, :instance, :origin,"
            " :why)",
            why=f"plan {held.id} held: {self.guard_reason}; {self.plan.reason}",
        )
        return held.id

    def supersede_held(self) -> None:
        self._supersede("superseded")

    def _supersede(self, status: str) -> None:
        self.sql(
            "UPDATE held_plans SET status = :status, timedecided = :now"
            " WHERE instance_id = :instance AND status = 'held'",
            status=status,
        )

    # --- 4. write, log, notify ------------------------------------------------------------------

    def write(self) -> None:
        self._write_enrolments()
        self._write_roles_and_groups()
        self._log()
        self._refresh_statistics()
        self._notify()

    def _refresh_statistics(self) -> None:
        """On PostgreSQL, re-analyze the tables a big plan changed. Autovacuum does it only
        later, and a sync planned on the old statistics (an instance that owns "no" roles) picks
        nested loops that take minutes over 100,000 rows."""
        if self.session.get_bind().dialect.name != "postgresql":
            return
        result = self.result
        changed = {
            "user_enrolments": len(result.enrolled) + len(result.unenrolled),
            "role_assignments": result.roles_added + result.roles_removed,
            "group_members": result.groups_added + result.groups_removed,
        }
        for name, count in changed.items():
            if count >= ANALYZE_ROWS:
                self.session.execute(text(f"ANALYZE {name}"))

    def _write_enrolments(self) -> None:
        r = self.result
        if r.enrolled:
            self.sql(
                "INSERT INTO user_enrolments (instance_id, user_id, status, timestart, timeend,"
                " timecreated, timemodified)"
                " SELECT :instance, w.user_id, w.status, COALESCE(w.timestart, 0),"
                " COALESCE(w.timeend, 0), :now, :now FROM ek_want w"
                " JOIN ek_diff d ON d.user_id = w.user_id AND d.kind = 'enrolled'"
            )
        if r.updated or r.suspended:
            self.sql(
                "UPDATE user_enrolments SET status = w.status,"
                " timestart = COALESCE(w.timestart, user_enrolments.timestart),"
                " timeend = COALESCE(w.timeend, user_enrolments.timeend), timemodified = :now"
                " FROM ek_want w JOIN ek_diff d ON d.user_id = w.user_id"
                "  AND d.kind IN ('updated', 'suspended')"
                " WHERE user_enrolments.user_id = w.user_id AND user_enrolments.id IN"
                " (SELECT ue.id FROM ek_diff x CROSS JOIN user_enrolments ue"
                "  WHERE x.kind IN ('updated', 'suspended') AND ue.user_id = x.user_id"
                "  AND ue.instance_id = :instance)"
            )
        if self.size["drop"]:
            self.sql(
                "UPDATE user_enrolments SET status = 1, timemodified = :now"
                " WHERE instance_id = :instance AND status = 0 AND user_id IN"
                " (SELECT user_id FROM ek_drop WHERE action IN ('suspend', 'suspend_noroles'))"
            )
        if r.unenrolled:
            self.sql(
                "DELETE FROM user_enrolments WHERE instance_id = :instance AND user_id IN"
                " (SELECT user_id FROM ek_diff WHERE kind = 'unenrolled')"
            )

    def _write_roles_and_groups(self) -> None:
        r = self.result
        if r.roles_removed:
            self.sql(
                "DELETE FROM role_assignments WHERE id IN (SELECT ra.id FROM ek_roles r"
                " CROSS JOIN role_assignments ra WHERE r.added = 0 AND ra.user_id = r.user_id"
                " AND ra.role_id = r.role_id AND ra.component = :component AND ra.itemid = :instance)"
            )
        if r.groups_removed:
            self.sql(
                "DELETE FROM group_members WHERE component = :component AND itemid = :instance"
                " AND (group_id, user_id) IN (SELECT group_id, user_id FROM ek_groups WHERE added = 0)"
            )
        # Moodle's rule: when the last enrolment in a course goes, so do the user's unowned
        # roles and group memberships there.
        if r.unenrolled:
            self.sql(
                "INSERT INTO ek_roles (user_id, role_id, added, reason, owned)"
                " SELECT ra.user_id, ra.role_id, 0, d.reason, 0 FROM ek_diff d"
                " CROSS JOIN role_assignments ra"
                " WHERE d.kind = 'unenrolled' AND ra.user_id = d.user_id"
                " AND ra.contextlevel = :course_level AND ra.instanceid = :course"
                " AND ra.component = '' AND NOT EXISTS (SELECT 1 FROM user_enrolments ue"
                "  JOIN enrol_instances ei ON ei.id = ue.instance_id"
                "  WHERE ei.course_id = :course AND ue.user_id = ra.user_id)"
            )
        if r.unenrolled:
            self.sql(
                "DELETE FROM role_assignments WHERE id IN (SELECT ra.id FROM ek_roles r"
                " CROSS JOIN role_assignments ra WHERE r.added = 0 AND r.owned = 0"
                " AND ra.user_id = r.user_id AND ra.role_id = r.role_id"
                " AND ra.contextlevel = :course_level AND ra.instanceid = :course AND ra.component = '')"
            )
        if r.unenrolled:
            self.sql(
                "INSERT INTO ek_groups (user_id, group_id, added, reason)"
                " SELECT gm.user_id, gm.group_id, 0, d.reason FROM ek_diff d"
                " CROSS JOIN group_members gm"
                " WHERE d.kind = 'unenrolled' AND gm.user_id = d.user_id AND gm.component = ''"
                " AND gm.group_id IN (SELECT id FROM groups WHERE course_id = :course)"
                " AND NOT EXISTS (SELECT 1 FROM user_enrolments ue"
                "  JOIN enrol_instances ei ON ei.id = ue.instance_id"
                "  WHERE ei.course_id = :course AND ue.user_id = gm.user_id)"
            )
        if r.unenrolled or r.groups_removed:
            self.sql(
                "DELETE FROM group_members WHERE component = ''"
                " AND (group_id, user_id) IN (SELECT group_id, user_id FROM ek_groups WHERE added = 0)"
            )
        if r.roles_added:
            self.sql(
                "INSERT INTO role_assignments (role_id, user_id, contextlevel, instanceid, component,"
                " itemid, timemodified)"
                " SELECT role_id, user_id, :course_level, :course, :component, :instance, :now"
                " FROM ek_roles WHERE added = 1"
            )
        if r.groups_added:
            self.sql(
                "INSERT INTO group_members (group_id, user_id, component, itemid, timeadded)"
                " SELECT group_id, user_id, :component, :instance, :now FROM ek_groups WHERE added = 1"
            )

    def _log(self) -> None:
        r = self.result
        if r.changed_users:
            self.sql(
                "INSERT INTO log (time, event, component, course_id, user_id, instance_id, origin,"
                " reason)"
                " SELECT :now, CASE kind WHEN 'enrolled' THEN 'user_enrolled'"
                "  WHEN 'unenrolled' THEN 'user_unenrolled' ELSE 'user_enrolment_updated' END,"
                " :component, :course, user_id, :instance, :origin,"
                " CASE WHEN kind = 'suspended' THEN 'suspended: ' ELSE '' END"
                "  || COALESCE(reason, :reason) FROM ek_diff"
            )
        if r.roles_added or r.roles_removed or r.unenrolled:
            self.sql(
                "INSERT INTO log (time, event, component, course_id, user_id, instance_id, origin,"
                " reason)"
                " SELECT :now, CASE WHEN e.added = 1 THEN 'role_assigned' ELSE 'role_unassigned' END,"
                " :component, :course, e.user_id, :instance, :origin,"
                " 'role ' || COALESCE(r.shortname, CAST(e.role_id AS VARCHAR(20))) || ': '"
                " || COALESCE(e.reason, :reason)"
                " FROM ek_roles e LEFT JOIN roles r ON r.id = e.role_id"
            )
        if r.groups_added or r.groups_removed or r.unenrolled:
            self.sql(
                "INSERT INTO log (time, event, component, course_id, user_id, instance_id, origin,"
                " reason)"
                " SELECT :now, CASE WHEN e.added = 1 THEN 'group_member_added'"
                "  ELSE 'group_member_removed' END, :component, :course, e.user_id, :instance,"
                " :origin,"
                " 'group ' || COALESCE(g.name, CAST(e.group_id AS VARCHAR(20))) || ': '"
                " || COALESCE(e.reason, :reason)"
                " FROM ek_groups e LEFT JOIN groups g ON g.id = e.group_id"
            )

    def _notify(self) -> None:
        result = self.result
        component, instance_id, course_id = (
            self.instance.component,
            self.instance.id,
            self.instance.course_id,
        )
        roles_changed = result.roles_added or result.roles_removed or result.unenrolled
        role_changes = tuple(
            RoleChange(
                user_id=user_id,
                role_id=role_id,
                contextlevel=COURSE,
                instanceid=course_id,
                added=bool(added),
                component=component if owned else "",
                itemid=instance_id if owned else 0,
            )
            for user_id, role_id, added, owned in (
                self.rows("SELECT user_id, role_id, added, owned FROM ek_roles")
                if roles_changed
                else ()
            )
        )
        # Read the temp tables before hooks run: a hook's own plan reuses them.
        changes = EnrolmentChanges(
            instance_id=self.instance.id,
            course_id=self.instance.course_id,
            method=self.instance.method,
            origin=self.site.origin,
            reason=self.plan.reason,
            enrolled=tuple(result.enrolled),
            updated=tuple(result.updated),
            suspended=tuple(result.suspended),
            unenrolled=tuple(result.unenrolled),
        )
        if changes:
            self.site.plugins.enrolments_changed(site=self.site, changes=changes)
        if role_changes:
            self.site.plugins.role_assignments_changed(site=self.site, changes=role_changes)


__all__ = ["Change", "DESIRED_COLUMNS", "Engine", "Outcome", "Plan"]
