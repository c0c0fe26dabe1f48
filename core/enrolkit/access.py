"""People in courses: opening a course (access decisions), "Enrol me", completing a course."""

from __future__ import annotations

from sqlalchemy import select

from .changes import CourseAccess
from .enrolments import is_enrolled
from .errors import Refused
from .log import record
from .models import Course, CourseCompletion, EnrolInstance, User
from .site import Site


def view_course(site: Site, user: User, course: Course) -> CourseAccess:
    """Fire ``on_course_view`` and decide: enrolled or any ``granted`` -> granted; else the first
    ``confirm``; else denied with the methods' reasons."""
    with site.atomic():
        enrolled = is_enrolled(site, user.id, course.id)
        answers = [
            a
            for a in site.plugins.on_course_view(
                site=site, user=user, course=course, enrolled=enrolled
            )
            if a
        ]
        if enrolled or is_enrolled(site, user.id, course.id):
            decision = CourseAccess("granted", "enrolled")
        else:
            decision = _decide(answers, course)
        record(
            site,
            "course_viewed",
            "core",
            course_id=course.id,
            user_id=user.id,
            reason=f"{decision.decision}: {decision.reason}".rstrip(": "),
        )
    return decision


def _decide(answers: list[CourseAccess], course: Course) -> CourseAccess:
    for wanted in ("granted", "confirm"):
        for answer in answers:
            if answer.decision == wanted:
                return answer
    reasons = [a.reason for a in answers if a.reason]
    return CourseAccess(
        "denied",
        "; ".join(reasons)
        or f"you are not enrolled in {course.shortname} and no method lets you in",
        redirect=next((a.redirect for a in answers if a.redirect), None),
    )


def enrol_me(site: Site, user: User, course: Course) -> CourseAccess:
    """Confirm a self-enrolment offered by a course view (the "Enrol me" button)."""
    decision = view_course(site, user, course)
    if decision.decision == "granted":
        return decision
    if decision.decision != "confirm" or decision.instance_id is None:
        raise Refused(
            f"{course.shortname} offers no enrolment to {user.username}: {decision.reason}"
        )
    instance = site.session.get(EnrolInstance, decision.instance_id)
    with site.atomic():
        site.plugins.method(instance.method).confirm_enrolment(site, instance, user)
    return view_course(site, user, course)


def complete_course(site: Site, user: User, course: Course, timecompleted: int) -> bool:
    """Record a completion and fire ``on_completion``; a repeat changes nothing (False)."""
    with site.atomic():
        if site.session.get(CourseCompletion, (user.id, course.id)) is not None:
            return False
        site.session.add(
            CourseCompletion(user_id=user.id, course_id=course.id, timecompleted=timecompleted)
        )
        site.session.flush()
        record(site, "course_completed", "core", course_id=course.id, user_id=user.id)
        site.plugins.on_completion(site=site, user=user, course=course, timecompleted=timecompleted)
    return True


def completions(site: Site, course: Course) -> list[dict]:
    rows = site.session.execute(
        select(User.username, CourseCompletion.timecompleted)
        .join(CourseCompletion, CourseCompletion.user_id == User.id)
        .where(CourseCompletion.course_id == course.id)
        .order_by(CourseCompletion.timecompleted, User.username)
    )
    return [{"username": u, "timecompleted": t} for u, t in rows]
