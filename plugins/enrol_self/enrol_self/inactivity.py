"""Unenrolling who stays away (Moodle's ``longtimenosee``): the scheduled task.

A user's last activity in a course is their latest course view (the core logs each one as
``course_viewed``), or, before their first view, when they enrolled; an instance with
``longtimenosee`` unenrols those whose last activity is older than that many seconds.
"""

from __future__ import annotations

from enrolkit import Change, Plan
from enrolkit.batches import apply_batched
from enrolkit.engine import UNENROL_OP
from enrolkit.models import EnrolInstance, LogEntry, UserEnrolment
from enrolkit.site import Site
from enrolkit.texts import Text
from sqlalchemy import func, select

from . import NAME


def inactive(site: Site, instance: EnrolInstance, limit: int) -> list[int]:
    """Users of ``instance`` without activity in the course for more than ``limit`` seconds."""
    viewed = (
        select(func.max(LogEntry.time))
        .where(
            LogEntry.event == "course_viewed",
            LogEntry.course_id == instance.course_id,
            LogEntry.user_id == UserEnrolment.user_id,
        )
        .scalar_subquery()
    )
    last = func.coalesce(viewed, UserEnrolment.timecreated)
    return list(
        site.session.scalars(
            select(UserEnrolment.user_id)
            .where(UserEnrolment.instance_id == instance.id, last < site.now() - limit)
            .order_by(UserEnrolment.user_id)
        )
    )


def unenrol_inactive(site: Site) -> str:
    """The task: each enabled instance with ``longtimenosee``, their plans in engine batches."""
    if not site.method_enabled(NAME):
        return Text("self enrolment is disabled")
    found = site.session.scalars(
        select(EnrolInstance)
        .where(EnrolInstance.method == NAME, EnrolInstance.enabled.is_(True))
        .order_by(EnrolInstance.id)
    ).all()
    plans = (plan for instance in found if (plan := _plan(site, instance)) is not None)
    gone = sum(len(applied.outcome.unenrolled) for applied in apply_batched(site, plans))
    return Text("%(count)d inactive user(s) unenrolled", count=gone)


def _plan(site: Site, instance: EnrolInstance) -> Plan | None:
    """Unenrol the instance's inactive users; None when it has no limit or nobody to remove."""
    limit = (instance.settings or {}).get("longtimenosee") or 0
    users = inactive(site, instance, limit) if limit else []
    if not users:
        return None
    reason = f"{NAME}: no activity in the course for {limit // 86400} day(s) or more"
    return Plan(
        instance.id, reason, changes=[Change(uid, op=UNENROL_OP, reason=reason) for uid in users]
    )
