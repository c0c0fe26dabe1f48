"""Which instances' desired states differ from the database, found for many instances at once.

A full sync of a source-driven method (cohort sync, meta links, category enrolments) checks every
instance of the method every hour, and nearly always nothing has changed. Applying one plan per
instance would run the engine's whole diff thousands of times; instead the method gives one SQL
selection of the desired state of *all* its instances (``instance_id`` then the engine's
:data:`~enrolkit.engine.DESIRED_COLUMNS`), and :func:`stale_instances` finds, in a handful of
set-based queries, the instances where applying that state would change something. Only those get
a plan. The checks mirror the engine's diff: a false alarm costs one no-op plan, a miss would
leave drift unrepaired, so every change the engine can make is looked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import Select, column, insert, select, table, text

from .batches import apply_batched
from .engine import DESIRED_COLUMNS
from .methods import KEEP, SUSPEND, SUSPEND_NOROLES, UNENROL
from .tasks import failure, summary
from .texts import N_, Text

if TYPE_CHECKING:
    from .engine import Outcome, Plan
    from .models import EnrolInstance
    from .site import Site

#: Given a selection of instance ids, the desired state of those instances.
Desired = Callable[[Select], Select]

_DDL = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS ek_drift_plan (instance_id INTEGER NOT NULL,"
    " user_id INTEGER NOT NULL, role_id INTEGER, timestart BIGINT, timeend BIGINT,"
    " status INTEGER, group_id INTEGER)",
    "CREATE TEMPORARY TABLE IF NOT EXISTS ek_drift_want (instance_id INTEGER NOT NULL,"
    " user_id INTEGER NOT NULL, timestart BIGINT, timeend BIGINT, status INTEGER,"
    " PRIMARY KEY (instance_id, user_id))",
    "CREATE TEMPORARY TABLE IF NOT EXISTS ek_drift_ids (instance_id INTEGER PRIMARY KEY)",
    "CREATE INDEX IF NOT EXISTS ek_drift_plan_user ON ek_drift_plan (instance_id, user_id)",
)
_COLUMNS = ("instance_id", *DESIRED_COLUMNS)
_plan = table("ek_drift_plan", *(column(name) for name in _COLUMNS))
_ids = table("ek_drift_ids", column("instance_id"))

#: Each query names instances where the engine would change something; see the engine's diff.
#: ``ek_drift_ids i CROSS JOIN`` makes SQLite start from the checked instances (PostgreSQL plans
#: it as an ordinary join), so the cost follows their rows, not the whole table.
_CHECKS = {
    # A wanted user is not enrolled, or with another status or other dates.
    "enrolment": "SELECT DISTINCT w.instance_id FROM ek_drift_want w"
    " LEFT JOIN user_enrolments ue ON ue.instance_id = w.instance_id AND ue.user_id = w.user_id"
    " WHERE ue.id IS NULL OR ue.status <> w.status OR ue.timestart <> w.timestart"
    " OR ue.timeend <> w.timeend",
    # A wanted role the instance does not hold for the user.
    "role added": "SELECT DISTINCT p.instance_id FROM ek_drift_plan p"
    " WHERE p.role_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM role_assignments ra"
    "  WHERE ra.component = :component AND ra.itemid = p.instance_id"
    "  AND ra.user_id = p.user_id AND ra.role_id = p.role_id)",
    # A role the instance holds for a wanted user that the plan no longer gives.
    "role removed": "SELECT DISTINCT ra.itemid FROM ek_drift_ids i CROSS JOIN role_assignments ra"
    " JOIN ek_drift_want w ON w.instance_id = ra.itemid AND w.user_id = ra.user_id"
    " WHERE ra.component = :component AND ra.itemid = i.instance_id AND NOT EXISTS"
    " (SELECT 1 FROM ek_drift_plan p WHERE p.instance_id = ra.itemid"
    "  AND p.user_id = ra.user_id AND p.role_id = ra.role_id)",
    # A wanted group membership missing (any owner's membership counts, as in the engine).
    "group added": "SELECT DISTINCT p.instance_id FROM ek_drift_plan p"
    " WHERE p.group_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM group_members gm"
    "  WHERE gm.user_id = p.user_id AND gm.group_id = p.group_id)",
    # A membership the instance owns for a wanted user in a group the plan no longer names.
    "group removed": "SELECT DISTINCT gm.itemid FROM ek_drift_ids i CROSS JOIN group_members gm"
    " JOIN ek_drift_want w ON w.instance_id = gm.itemid AND w.user_id = gm.user_id"
    " WHERE gm.component = :component AND gm.itemid = i.instance_id AND NOT EXISTS"
    " (SELECT 1 FROM ek_drift_plan p WHERE p.instance_id = gm.itemid"
    "  AND p.user_id = gm.user_id AND p.group_id = gm.group_id)",
    # A role or membership the instance owns for a user it does not enrol (left by a crash or
    # a race): the engine removes it, nothing else would.
    "orphan role": "SELECT DISTINCT ra.itemid FROM ek_drift_ids i CROSS JOIN role_assignments ra"
    " WHERE ra.component = :component AND ra.itemid = i.instance_id AND NOT EXISTS"
    " (SELECT 1 FROM user_enrolments ue WHERE ue.instance_id = ra.itemid"
    "  AND ue.user_id = ra.user_id)",
    "orphan group": "SELECT DISTINCT gm.itemid FROM ek_drift_ids i CROSS JOIN group_members gm"
    " WHERE gm.component = :component AND gm.itemid = i.instance_id AND NOT EXISTS"
    " (SELECT 1 FROM user_enrolments ue WHERE ue.instance_id = gm.itemid"
    "  AND ue.user_id = gm.user_id)",
}

#: Enrolled users the selection leaves out, by removal action: when the action changes something.
_LEAVERS = (
    "SELECT DISTINCT ue.instance_id FROM ek_drift_ids i CROSS JOIN user_enrolments ue"
    " WHERE ue.instance_id = i.instance_id AND NOT EXISTS (SELECT 1 FROM ek_drift_want w"
    "  WHERE w.instance_id = ue.instance_id AND w.user_id = ue.user_id)"
)
_LEAVER_CONDITION = {
    UNENROL: "",
    SUSPEND: " AND ue.status = 0",
    # Already suspended leavers still lose the roles the instance gave them.
    SUSPEND_NOROLES: " AND (ue.status = 0 OR EXISTS (SELECT 1 FROM role_assignments ra"
    "  WHERE ra.component = :component AND ra.itemid = ue.instance_id"
    "  AND ra.user_id = ue.user_id))",
}


def stale_instances(
    site: Site, desired: Desired, instance_ids: Iterable[int], component: str, removal: str
) -> list[int]:
    """The ids among ``instance_ids`` whose desired state differs from what the database holds.

    ``desired(ids)`` selects ``instance_id`` then the engine's desired columns for the instances
    whose id is in ``ids`` (a selection); ``component`` owns the instances' roles and groups
    (``enrol_<method>``); ``removal`` is the action the engine applies to users left out.
    """
    ids = sorted(set(instance_ids))
    if not ids:
        return []
    session = site.session
    for ddl in _DDL:
        session.execute(text(ddl))
    for name in ("ek_drift_plan", "ek_drift_want", "ek_drift_ids"):
        session.execute(text(f"DELETE FROM {name}"))
    session.execute(insert(_ids), [{"instance_id": i} for i in ids])
    checked = select(_ids.c.instance_id)
    session.execute(insert(_plan).from_select(list(_COLUMNS), desired(checked)))
    # The engine's aggregation: active if any row is, earliest start, latest end (open wins).
    session.execute(
        text(
            "INSERT INTO ek_drift_want (instance_id, user_id, timestart, timeend, status)"
            " SELECT p.instance_id, p.user_id, MIN(COALESCE(p.timestart, 0)),"
            " CASE WHEN MIN(COALESCE(p.timeend, 0)) = 0 THEN 0 ELSE MAX(p.timeend) END,"
            " MIN(COALESCE(p.status, 0)) FROM ek_drift_plan p"
            " GROUP BY p.instance_id, p.user_id"
        )
    )
    checks = list(_CHECKS.values())
    if removal != KEEP:
        checks.append(_LEAVERS + _LEAVER_CONDITION[removal])
    stale: set[int] = set()
    for query in checks:
        stale.update(session.scalars(text(query), {"component": component}))
    return sorted(stale.intersection(ids))


#: How each count of an outcome reads, and what a held plan would have done to enrolments
#: (message ids: a task's result is shown in its reader's language).
_COUNTS = {
    "enrolled": N_("%(count)d enrolled"),
    "updated": N_("%(count)d updated"),
    "suspended": N_("%(count)d suspended"),
    "unenrolled": N_("%(count)d unenrolled"),
    "roles_added": N_("%(count)d roles_added"),
    "roles_removed": N_("%(count)d roles_removed"),
    "groups_added": N_("%(count)d groups_added"),
    "groups_removed": N_("%(count)d groups_removed"),
}
_WOULD = {
    "enrolled": N_("enrol %(count)d"),
    "updated": N_("update %(count)d"),
    "suspended": N_("suspend %(count)d"),
    "unenrolled": N_("unenrol %(count)d"),
}


@dataclass
class SyncReport:
    """What a full or partial re-sync did, for a task's one-line result. A plan the mass-removal
    guard held changed nothing: it is reported apart, with what it would do, not as re-synced."""

    checked: int = 0
    synced: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    #: (held plan id, what it would do), in the order they were held.
    held: list[tuple[int, Text]] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        if outcome.held_plan_id is not None:
            self.held.append((outcome.held_plan_id, would(outcome)))
            return
        self.synced += 1
        for key, value in outcome.counts().items():
            self.counts[key] = self.counts.get(key, 0) + value

    def __str__(self) -> Text:
        """``3 instance(s) checked, 1 re-synced: 2 enrolled; held as plan 7 (would unenrol 90)``,
        a :class:`Text` (``str()`` keeps it)."""
        checked = Text(
            "%(checked)d instance(s) checked, %(synced)d re-synced",
            checked=self.checked,
            synced=self.synced,
        )
        changes = [Text(_COUNTS[key], count=value) for key, value in self.counts.items() if value]
        if changes:
            checked = Text("%(done)s: %(changes)s", done=checked, changes=Text.join(", ", changes))
        if not self.held:
            return checked
        held = Text.join(", ", [Text("plan %(id)d (%(what)s)", id=i, what=w) for i, w in self.held])
        return Text("%(done)s; held as %(plans)s", done=checked, plans=held)


def would(outcome: Outcome) -> Text:
    """``would unenrol 100, suspend 3``: what a held plan would change in enrolments."""
    counts = outcome.counts()
    parts = [Text(verb, count=counts[key]) for key, verb in _WOULD.items() if counts[key]]
    if not parts:
        return Text("would change roles or groups only")
    return Text("would %(changes)s", changes=Text.join(", ", parts))


def resync(
    site: Site,
    instances: Iterable[EnrolInstance],
    desired: Desired,
    plan: Callable[[EnrolInstance], Plan],
) -> SyncReport:
    """Apply ``plan(instance)`` to each of ``instances`` whose state drifted from ``desired``.

    The stale instances' plans apply in engine batches (:mod:`enrolkit.batches`); the guard
    decides per instance, so one held by it leaves the others applied. A plan that fails is
    reported once the others are applied: an :class:`EnrolkitError` naming each failed instance.
    Instances are grouped by owner and removal action for the drift check.
    """
    instances = list(instances)
    groups: dict[tuple[str, str], list[int]] = {}
    for instance in instances:
        method = site.plugins.method(instance.method)
        key = (instance.component, method.removal_action(site, instance))
        groups.setdefault(key, []).append(instance.id)
    stale: set[int] = set()
    for (component, removal), ids in groups.items():
        stale.update(stale_instances(site, desired, ids, component, removal))
    report = SyncReport(checked=len(instances))
    plans = (plan(instance) for instance in instances if instance.id in stale)
    failures = []
    for applied in apply_batched(site, plans, isolate=True):
        if applied.error is not None:
            failures.append(failure(applied.plan.instance_id, applied.error))
        else:
            report.add(applied.outcome)
    if failures:
        summary(str(report), failures)  # raises, naming each failed instance
    return report


__all__ = ["Desired", "SyncReport", "resync", "stale_instances", "would"]
