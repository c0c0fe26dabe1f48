"""Opening a course (``on_course_view``) and confirming an "Enrol me".

A user who is not enrolled opens a course: each enabled auto-enrol instance of the course answers
in its order. A view-mode (or login-mode) instance whose rule the user matches enrols them and
grants access; a confirm-mode one offers the "Enrol me" confirmation and changes nothing until the
user confirms. Otherwise the answer is a denial whose reason says what failed, condition by
condition, or (site setting ``denied=redirect``) a redirect.
"""

from __future__ import annotations

from enrolkit import CourseAccess
from enrolkit.errors import Refused
from enrolkit.models import Course, EnrolInstance, User
from enrolkit.site import Site
from enrolkit.texts import Text
from sqlalchemy import select

from .enrolling import enrol
from .matching import NAME, blockers, rule_of, why_not
from .schema import CONFIRM, REDIRECT


def label(site: Site, instance: EnrolInstance) -> str:
    return site.plugins.method(NAME).display_name(instance)


def on_course_view(
    site: Site, user: User, course: Course, enrolled: bool
) -> CourseAccess | list[CourseAccess] | None:
    if enrolled or not site.method_enabled(NAME):
        return None
    instances = site.session.scalars(
        select(EnrolInstance)
        .where(
            EnrolInstance.course_id == course.id,
            EnrolInstance.method == NAME,
            EnrolInstance.enabled.is_(True),
        )
        .order_by(EnrolInstance.sortorder, EnrolInstance.id)
    ).all()
    answers = []
    for instance in instances:
        answer = _answer(site, instance, user)
        if answer.decision == "granted":
            return answer
        answers.append(answer)
    offers = [answer for answer in answers if answer.decision == "confirm"]
    if offers:  # each confirm-mode instance the user may join gets its own "Enrol me"
        return offers
    if not answers:
        return None
    reason = Text.join("; ", [answer.reason for answer in answers])
    conf = site.method_settings(NAME)
    redirect = conf["denied_url"] if conf["denied"] == REDIRECT else None
    return CourseAccess("denied", reason, answers[0].instance_id, redirect)


def _refusal(site: Site, instance: EnrolInstance, user: User) -> Text | None:
    """Why ``user`` cannot be enrolled by ``instance`` now, or None."""
    blocked = blockers(site, instance, user)
    if blocked:
        return Text("%(method)s: %(reasons)s", method=label(site, instance),
                    reasons=Text.join("; ", blocked))  # fmt: skip
    explanation = rule_of(site, instance).explain(site, user)
    if not explanation.passed:
        return Text("%(method)s: you do not meet the conditions: %(why)s",
                    method=label(site, instance), why=why_not(explanation))  # fmt: skip
    return None


def _answer(site: Site, instance: EnrolInstance, user: User) -> CourseAccess:
    refusal = _refusal(site, instance, user)
    if refusal:
        return CourseAccess("denied", refusal, instance.id)
    if (instance.settings or {}).get("mode") == CONFIRM:
        return CourseAccess(
            "confirm",
            Text('%(method)s: confirm to enrol ("Enrol me")', method=label(site, instance)),
            instance.id,
        )
    enrol(site, instance, user, "matched the rule on course view")
    return CourseAccess(
        "granted", Text("enrolled by %(method)s", method=label(site, instance)), instance.id
    )


def confirm(site: Site, instance: EnrolInstance, user: User) -> None:
    """The user confirmed ("Enrol me"): enrol them if the instance offers confirmation and they
    still may be enrolled, with the instance's duration."""
    if not site.method_enabled(NAME):
        raise Refused(Text("auto-enrolment is disabled on this site"))
    mode = (instance.settings or {}).get("mode")
    if mode != CONFIRM:
        raise Refused(Text("this auto-enrolment does not offer a confirmation"))
    refusal = _refusal(site, instance, user)
    if refusal:
        raise Refused(refusal)
    enrol(site, instance, user, 'confirmed the enrolment ("Enrol me")')
