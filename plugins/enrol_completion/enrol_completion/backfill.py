"""Enrolling the people who completed the source before the instance existed
(``enrolkit instance add B completion source=A --backfill``).

One desired-state plan, selected in SQL from ``course_completions``: every past completer of the
source whose completion falls in the window and who is not already in the target course (an
active, current enrolment by any enabled method, as Moodle's "enrol past completers" page does),
enrolled from now for the instance's duration. Completers whose delay has not run out yet get a
pending enrolment due at completion time + delay instead, like a live completion.
"""

from __future__ import annotations

from enrolkit import Plan
from enrolkit.enrolments import active_clause
from enrolkit.errors import Refused
from enrolkit.models import ACTIVE, CourseCompletion, EnrolInstance, User, UserEnrolment
from enrolkit.site import Site
from sqlalchemy import Integer, Select, literal, null, select

from . import groups, reaction, sources
from .timing import Timing


def plan(site: Site, instance: EnrolInstance) -> Plan | None:
    """The backfill of a new instance. A desired state names everyone the instance should hold,
    so it is only right while the instance holds nobody: an instance with enrolments refuses."""
    taken = select(UserEnrolment.id).where(UserEnrolment.instance_id == instance.id).limit(1)
    if site.session.scalar(taken) is not None:
        raise Refused(f"instance {instance.id} already has enrolments; backfill only a new one")
    source = sources.source_of(site, instance.id)
    if source is None:
        return None
    timing = Timing.of(instance)
    now = site.now()
    completers = _completers(site, instance, source.id, timing, now)
    # Completion time + delay against now, written so the (course, time) index applies.
    waiting = CourseCompletion.timecompleted > now - timing.delay
    for user_id, timecompleted in site.session.execute(completers.where(waiting)):
        reaction.act(site, instance, user_id, source, timecompleted)
    ready = completers.where(~waiting)
    if site.session.scalar(ready.limit(1)) is None:
        return None
    group_id = groups.group_id(site, instance)
    desired = ready.with_only_columns(
        CourseCompletion.user_id.label("user_id"),
        _value(instance.role_id).label("role_id"),
        literal(now, Integer).label("timestart"),
        literal(timing.end(now), Integer).label("timeend"),
        literal(ACTIVE, Integer).label("status"),
        _value(group_id).label("group_id"),
    )
    reason = f"completed {source.shortname} before this instance was added (backfill)"
    return Plan(instance.id, reason=reason, desired=desired)


def _completers(
    site: Site, instance: EnrolInstance, source_id: int, timing: Timing, now: int
) -> Select:
    """(user id, completion time) of the source's completers the backfill is for."""
    in_course = (
        select(UserEnrolment.id)
        .join(EnrolInstance, EnrolInstance.id == UserEnrolment.instance_id)
        .where(
            EnrolInstance.course_id == instance.course_id,
            EnrolInstance.method.in_(site.enabled_methods()),
            UserEnrolment.user_id == CourseCompletion.user_id,
            active_clause(now),
        )
        .exists()
    )
    return (
        select(CourseCompletion.user_id, CourseCompletion.timecompleted)
        .join(User, User.id == CourseCompletion.user_id)
        .where(
            CourseCompletion.course_id == source_id,
            CourseCompletion.timecompleted > 0,
            User.deleted.is_(False),
            ~in_course,
            *timing.accepts_sql(CourseCompletion.timecompleted),
        )
        .order_by(CourseCompletion.user_id)
    )


def _value(value: int | None):
    return null() if value is None else literal(value, Integer)
