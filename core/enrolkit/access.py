"""People in courses: opening a course (access decisions), "Enrol me", completing a course."""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select

from . import confirmation, db
from .changes import CourseAccess
from .enrolments import is_enrolled
from .errors import Refused
from .locks import retrying
from .log import record
from .models import Course, CourseCompletion, EnrolInstance, User
from .site import Site
from .texts import Text


def view_course(site: Site, user: User, course: Course) -> CourseAccess:
    """Fire ``on_course_view`` and decide: enrolled or any ``granted`` -> granted; else every
    ``confirm`` (as ``offers``); else denied with the methods' reasons."""
    return retrying(site, lambda: _view_course(site, user, course))


def _view_course(site: Site, user: User, course: Course) -> CourseAccess:
    with site.atomic():
        enrolled = is_enrolled(site, user.id, course.id)
        answers = _flatten(
            site.plugins.on_course_view(site=site, user=user, course=course, enrolled=enrolled)
        )
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


def _flatten(results: list) -> list[CourseAccess]:
    """The hook's answers: each method gives one, a list of them, or None."""
    answers: list[CourseAccess] = []
    for result in results:
        if isinstance(result, list | tuple):
            answers.extend(a for a in result if a)
        elif result:
            answers.append(result)
    return answers


def _decide(answers: list[CourseAccess], course: Course) -> CourseAccess:
    for answer in answers:
        if answer.decision == "granted":
            return answer
    offers = tuple(answer for answer in answers if answer.decision == "confirm")
    if offers:
        return replace(offers[0], offers=offers)
    reasons = [a.reason for a in answers if a.reason]
    return CourseAccess(
        "denied",
        Text.join("; ", reasons)
        or Text(
            "you are not enrolled in %(course)s and no method lets you in", course=course.shortname
        ),
        redirect=next((a.redirect for a in answers if a.redirect), None),
    )


def enrol_me(
    site: Site,
    user: User,
    course: Course,
    data: dict | None = None,
    *,
    instance_id: int | None = None,
) -> CourseAccess:
    """Confirm a self-enrolment offered by a course view (the "Enrol me" button).

    ``instance_id`` chooses among several offers (needed only when the course makes more than
    one); ``data`` is what the user typed, loaded by the method's ``enrol_me_schema`` (a
    :class:`SettingsError` with per-field messages when it does not load)."""
    decision = view_course(site, user, course)
    if decision.decision == "granted":
        return decision
    if decision.decision != "confirm":
        raise Refused(
            Text("%(course)s offers no enrolment to %(username)s: %(reason)s",
                 course=course.shortname, username=user.username, reason=decision.reason)
        )  # fmt: skip
    offer = _offer(decision, course, instance_id)
    instance = site.session.get(EnrolInstance, offer.instance_id)
    confirmation.confirm(site, instance, user, data or {})
    return view_course(site, user, course)


def _offer(decision: CourseAccess, course: Course, instance_id: int | None) -> CourseAccess:
    offers = [offer for offer in decision.offers or (decision,) if offer.instance_id is not None]
    ids = ", ".join(str(offer.instance_id) for offer in offers)
    if instance_id is not None:
        for offer in offers:
            if offer.instance_id == instance_id:
                return offer
        raise Refused(
            f"instance {instance_id} offers you no enrolment in {course.shortname}; "
            f"choose one of: {ids}"
        )
    if len(offers) != 1:
        raise Refused(
            f"{course.shortname} offers {len(offers)} enrolments; "
            f"choose one by its instance id: {ids}"
        )
    return offers[0]


def complete_course(site: Site, user: User, course: Course, timecompleted: int) -> bool:
    """Record a completion and fire ``on_completion``; a repeat changes nothing (False). The
    same completion sent twice at once records and fires once: the second insert finds the
    first one's row and does nothing."""

    def work() -> bool:
        with site.atomic():
            inserted = site.session.scalar(
                db.insert_new(site.session, CourseCompletion)
                .values(user_id=user.id, course_id=course.id, timecompleted=timecompleted)
                .returning(CourseCompletion.user_id)
            )
            if inserted is None:
                return False
            record(site, "course_completed", "core", course_id=course.id, user_id=user.id)
            site.plugins.on_completion(
                site=site, user=user, course=course, timecompleted=timecompleted
            )
        return True

    return retrying(site, work)


def completions(site: Site, course: Course) -> list[dict]:
    rows = site.session.execute(
        select(User.username, CourseCompletion.timecompleted)
        .join(CourseCompletion, CourseCompletion.user_id == User.id)
        .where(CourseCompletion.course_id == course.id)
        .order_by(CourseCompletion.timecompleted, User.username)
    )
    return [{"username": u, "timecompleted": t} for u, t in rows]
