"""The queue of future-dated changes: enrol at T, unenrol at T (a flat-file line starting next
month, an enrolment delayed after a completion). A core task applies the due ones every minute.

Each action is claimed and applied in the same transaction as the engine's writes, so a crash or
a re-run applies it exactly once. Actions carry a key: scheduling a new action with the key of a
pending one replaces it (a later flat-file line for the same user, course and role wins).
"""

from __future__ import annotations

from sqlalchemy import and_, exists, func, select, update

from . import batches
from .engine import OPS, Change, Plan
from .errors import EnrolkitError, NotFound
from .models import EnrolInstance, PendingAction, User
from .site import Site
from .tasks import failure, summary
from .texts import Text

PENDING, APPLIED, REPLACED, CANCELLED = "pending", "applied", "replaced", "cancelled"
pending_table = PendingAction.__table__


def default_key(method: str, instance_id: int, user_id: int, role_id: int | None) -> str:
    return f"{method}:{instance_id}:{user_id}:{role_id or 0}"


def schedule(
    site: Site,
    *,
    due: int,
    action: str,
    instance_id: int,
    user_id: int,
    role_id: int | None = None,
    timestart: int = 0,
    timeend: int = 0,
    reason: str,
    key: str | None = None,
) -> PendingAction:
    """Queue ``action`` (an engine change: enrol, suspend, unenrol, remove, unassign) for
    ``user_id`` in ``instance_id`` at ``due``. A pending action with the same ``key`` (default:
    method, instance, user and role) is marked replaced. Commits, or is a savepoint inside the
    caller's transaction."""
    if action not in OPS:
        raise EnrolkitError(f"unknown pending action {action!r}; expected one of {', '.join(OPS)}")
    instance = site.session.get(EnrolInstance, instance_id)
    if instance is None:
        raise NotFound(f"no enrolment instance {instance_id}")
    key = key or default_key(instance.method, instance_id, user_id, role_id)
    now = site.now()
    with site.atomic():
        site.session.execute(
            update(pending_table)
            .where(pending_table.c.key == key, pending_table.c.status == PENDING)
            .values(status=REPLACED, timeapplied=now)
        )
        row = PendingAction(
            due=due,
            action=action,
            method=instance.method,
            instance_id=instance_id,
            user_id=user_id,
            role_id=role_id,
            timestart=timestart,
            timeend=timeend,
            reason=reason,
            origin=site.origin,
            key=key,
            status=PENDING,
            timecreated=now,
            timeapplied=0,
        )
        site.session.add(row)
        site.session.flush()
    return row


def cancel(site: Site, key: str) -> int:
    """Drop the pending action with ``key`` (an immediate change for the same user supersedes
    it). Returns how many were cancelled."""
    with site.atomic():
        result = site.session.execute(
            update(pending_table)
            .where(pending_table.c.key == key, pending_table.c.status == PENDING)
            .values(status=CANCELLED, timeapplied=site.now())
        )
    return result.rowcount


def pending(
    site: Site,
    *,
    instance_id: int | None = None,
    course_id: int | None = None,
    user_id: int | None = None,
) -> list[PendingAction]:
    """Pending actions, soonest first (optionally of one instance, one course, one user)."""
    stmt = select(PendingAction).where(PendingAction.status == PENDING)
    if instance_id is not None:
        stmt = stmt.where(PendingAction.instance_id == instance_id)
    if course_id is not None:
        stmt = stmt.where(
            PendingAction.instance_id.in_(
                select(EnrolInstance.id).where(EnrolInstance.course_id == course_id)
            )
        )
    if user_id is not None:
        stmt = stmt.where(PendingAction.user_id == user_id)
    return list(site.session.scalars(stmt.order_by(PendingAction.due, PendingAction.id)))


def apply_due(site: Site) -> str:
    """Apply every action due by now, in engine batches of instances (one transaction each),
    and say what happened.

    Actions whose user or instance no longer exists are cancelled. Actions of a method that is
    disabled or not installed wait until it is back. If an instance's plan fails, its actions stay
    pending (retried next run), the other instances still apply (a batch that fails is done
    again instance by instance), and the error is raised at the end so the task's result
    records it.
    """
    now = site.now()
    col = pending_table.c
    due = and_(col.status == PENDING, col.due <= now)
    with site.atomic():
        gone = site.session.execute(
            update(pending_table)
            .where(
                due,
                ~exists().where(EnrolInstance.id == col.instance_id)
                | ~exists().where(User.id == col.user_id, User.deleted.is_(False)),
            )
            .values(status=CANCELLED, timeapplied=now)
        ).rowcount
        groups = site.session.execute(
            select(col.instance_id, col.method, func.count())
            .where(due)
            .group_by(col.instance_id, col.method)
            .order_by(col.instance_id)
        ).all()
    enabled = set(site.enabled_methods())
    waiting = sum(count for _, method, count in groups if method not in enabled)
    ids = [instance_id for instance_id, method, _ in groups if method in enabled]
    done: dict[int, int] = {}
    failures: list[Text] = []
    for start in range(0, len(ids), batches.PLANS):
        chunk = ids[start : start + batches.PLANS]
        if not _apply_chunk(site, chunk, now, done, failures) and len(chunk) > 1:
            for instance_id in chunk:  # which one failed: each alone, the others still apply
                _apply_chunk(site, [instance_id], now, done, failures)
    applied, instances = sum(done.values()), sum(1 for count in done.values() if count)
    parts = [
        Text(
            "applied %(count)d pending action(s) in %(instances)d instance(s)",
            count=applied,
            instances=instances,
        )
    ]
    if waiting:
        parts.append(Text("%(count)d wait for a disabled method", count=waiting))
    if gone:
        parts.append(Text("%(count)d cancelled (user or instance gone)", count=gone))
    return summary(Text.join("; ", parts), failures)


def _apply_chunk(
    site: Site, instance_ids: list[int], now: int, done: dict[int, int], failures: list[Text]
) -> bool:
    """:func:`_apply_instances` in a transaction of its own; a failure of one instance alone is
    added to ``failures``. Whether it succeeded."""
    try:
        with site.atomic():
            done.update(_apply_instances(site, instance_ids, now))
    except Exception as exc:
        if len(instance_ids) == 1:
            failures.append(failure(instance_ids[0], exc))
        return False
    return True


def _apply_instances(site: Site, instance_ids: list[int], now: int) -> dict[int, int]:
    """Claim the instances' due actions (one UPDATE ... RETURNING) and apply them as one plan
    per instance, in one engine batch, in the caller's transaction: both happen or neither
    does. Returns how many actions each instance applied."""
    col = pending_table.c
    claimed = site.session.execute(
        update(pending_table)
        .where(col.instance_id.in_(instance_ids), col.status == PENDING, col.due <= now)
        .values(status=APPLIED, timeapplied=now)
        .returning(
            col.id,
            col.instance_id,
            col.due,
            col.action,
            col.user_id,
            col.role_id,
            col.timestart,
            col.timeend,
            col.reason,
        )
    ).all()
    # Another runner may have applied some first: only what this one claimed is applied.
    by_instance: dict[int, list] = {}
    for row in sorted(claimed, key=lambda row: (row.instance_id, row.due, row.id)):
        by_instance.setdefault(row.instance_id, []).append(row)
    site.engine.apply_many(
        [
            Plan(
                instance_id=instance_id,
                reason="pending action due",
                changes=[
                    Change(
                        user_id=row.user_id,
                        op=row.action,
                        role_id=row.role_id,
                        timestart=row.timestart,
                        timeend=row.timeend,
                        reason=row.reason,
                    )
                    for row in rows
                ],
            )
            for instance_id, rows in by_instance.items()
        ]
    )
    return {instance_id: len(rows) for instance_id, rows in by_instance.items()}
