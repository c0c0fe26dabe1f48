"""What a completion does: for every enabled instance waiting for the completed course, enrol
the user now, or queue a pending enrolment due at completion time + delay, or log the completion
as ignored when it falls outside the instance's window."""

from __future__ import annotations

from enrolkit import Change, Plan, clock, pending
from enrolkit.engine import ENROL
from enrolkit.log import record
from enrolkit.models import Course, EnrolInstance, User
from enrolkit.site import Site

from . import groups, sources
from .timing import Timing

METHOD, COMPONENT = "completion", "enrol_completion"


def pending_key(instance_id: int, user_id: int) -> str:
    """One pending enrolment per instance and user: a newer one replaces it."""
    return f"{COMPONENT}:{instance_id}:{user_id}"


def completed(site: Site, user: User, course: Course, timecompleted: int) -> None:
    """``on_completion``: one indexed lookup, then one small plan per waiting instance, all in
    one engine batch."""
    if not site.method_enabled(METHOD):
        return
    plans = [
        plan
        for instance in sources.waiting_for(site, course.id)
        if (plan := reaction(site, instance, user.id, course, timecompleted)) is not None
    ]
    site.engine.apply_many(plans)


def act(
    site: Site, instance: EnrolInstance, user_id: int, source: Course, timecompleted: int
) -> None:
    """React to one completion for one instance now (see :func:`reaction`)."""
    plan = reaction(site, instance, user_id, source, timecompleted)
    if plan is not None:
        site.engine.apply(plan)


def reaction(
    site: Site, instance: EnrolInstance, user_id: int, source: Course, timecompleted: int
) -> Plan | None:
    """The plan that enrols the user now; or None, having queued the delayed enrolment or
    logged the completion as outside the instance's window."""
    timing = Timing.of(instance)
    when = clock.iso(timecompleted)
    if not timing.accepts(timecompleted):
        record(
            site,
            "completion_ignored",
            COMPONENT,
            course_id=instance.course_id,
            user_id=user_id,
            instance_id=instance.id,
            reason=f"completed {source.shortname} on {when}, outside the window "
            f"({timing.window()})",
        )
        return None
    now = site.now()
    start = timing.start(timecompleted, now)
    end = timing.end(start)
    reason = f"completed {source.shortname} on {when}"
    if start > now:
        pending.schedule(
            site,
            due=start,
            action=ENROL,
            instance_id=instance.id,
            user_id=user_id,
            timestart=start,
            timeend=end,
            reason=reason,
            key=pending_key(instance.id, user_id),
        )
        record(
            site,
            "enrolment_delayed",
            COMPONENT,
            course_id=instance.course_id,
            user_id=user_id,
            instance_id=instance.id,
            reason=f"{reason}; the enrolment starts {clock.iso(start)}",
        )
        return None
    change = Change(
        user_id,
        timestart=start,
        timeend=end,
        group_id=groups.group_id(site, instance),
        reason=reason,
    )
    return Plan(instance.id, reason=reason, changes=[change])
