"""Whether an instance lets a user enrol now, and the course view's answers (one per instance,
so a course with several self-enrolment instances, e.g. one per group key, offers each)."""

from __future__ import annotations

from enrolkit import CourseAccess
from enrolkit.models import Course, EnrolInstance, User, UserEnrolment
from enrolkit.site import Site
from sqlalchemy import func, select

from . import NAME


def when(seconds: int) -> str:
    from enrolkit import clock

    return clock.iso(seconds)


def label(site: Site, instance: EnrolInstance) -> str:
    return site.plugins.method(NAME).display_name(instance)


def closed(site: Site, instance: EnrolInstance, user: User) -> str | None:
    """Why ``user`` cannot enrol through ``instance`` now (Moodle's ``can_self_enrol``), or
    None. The capacity is checked here for the message, and again by the engine, under a
    lock, when the user confirms."""
    settings = instance.settings or {}
    now = site.now()
    if not instance.enabled or not site.method_enabled(NAME):
        return "self enrolment is not available"
    if settings.get("enrolstartdate") and settings["enrolstartdate"] > now:
        return f"self enrolment opens on {when(settings['enrolstartdate'])}"
    if settings.get("enrolenddate") and settings["enrolenddate"] < now:
        return f"self enrolment closed on {when(settings['enrolenddate'])}"
    if not settings.get("newenrols", True):
        return "this instance takes no new enrolments"
    mine = site.session.scalar(
        select(UserEnrolment.status).where(
            UserEnrolment.instance_id == instance.id, UserEnrolment.user_id == user.id
        )
    )
    if mine is not None:
        return "you already have an enrolment here (it is suspended or has ended)"
    limit = settings.get("maxenrolled") or 0
    if limit and taken(site, instance) >= limit:
        return f"no places left (at most {limit} users)"
    return None


def taken(site: Site, instance: EnrolInstance) -> int:
    return site.session.scalar(select(func.count()).where(UserEnrolment.instance_id == instance.id))


def has_key(instance: EnrolInstance) -> bool:
    settings = instance.settings or {}
    return bool(settings.get("key") or settings.get("group_keys"))


def instances(site: Site, course: Course) -> list[EnrolInstance]:
    return list(
        site.session.scalars(
            select(EnrolInstance)
            .where(
                EnrolInstance.course_id == course.id,
                EnrolInstance.method == NAME,
                EnrolInstance.enabled.is_(True),
            )
            .order_by(EnrolInstance.sortorder, EnrolInstance.id)
        )
    )


def answers(site: Site, user: User, course: Course, enrolled: bool) -> list[CourseAccess] | None:
    """on_course_view: ``confirm`` for each instance open to the user, ``denied`` with the
    reason for the others."""
    if enrolled or not site.method_enabled(NAME):
        return None
    found = []
    for instance in instances(site, course):
        why = closed(site, instance, user)
        if why:
            found.append(CourseAccess("denied", f"{label(site, instance)}: {why}", instance.id))
        else:
            asks = "enrol with the key" if has_key(instance) else "enrol yourself"
            found.append(CourseAccess("confirm", f"{label(site, instance)}: {asks}", instance.id))
    return found or None
