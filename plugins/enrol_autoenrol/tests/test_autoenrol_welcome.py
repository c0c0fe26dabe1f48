"""The welcome message: validated when saved, one per real enrolment, whichever path enrols."""

from __future__ import annotations

from autoenrol_helpers import DAY, events
from enrol_autoenrol.tasks import process_enrolments, process_expiry
from enrolkit import access, mail
from enrolkit.models import MailMessage
from enrolkit.people import login
from sqlalchemy import select

TEMPLATE = "Bonjour {{ user.firstname }}, welcome to {$a->coursename}: {{ course.url }}"


def outbox(ae) -> list[MailMessage]:
    """The outbox once the delivery task has rendered it (no SMTP: nothing is sent)."""
    mail.deliver(ae.site)
    return list(ae.session.scalars(select(MailMessage).order_by(MailMessage.id)))


def test_one_welcome_per_real_enrolment(ae, clock):
    jean = ae.user("jean", firstname="Jean", email="jean@school.example")
    course = ae.course("ONBOARD", fullname="Onboarding & Co")
    ae.instance(
        course,
        "autoenrol",
        mode="login",
        welcome="on",
        welcome_template=TEMPLATE,
        removal="unenrol",
        duration=DAY,
    )
    login(ae.site, jean)
    login(ae.site, jean)
    [mail] = outbox(ae)
    assert (mail.to, mail.subject) == ("jean@school.example", "Welcome to Onboarding & Co")
    assert (
        mail.body
        == f"Bonjour Jean, welcome to Onboarding & Co: http://127.0.0.1:5000/course/{course.id}"
    )

    clock.advance(DAY)
    process_expiry(ae.site)  # the duration ran out: unenrolled
    login(ae.site, jean)  # enrolled again: a new enrolment, a new welcome
    assert len(outbox(ae)) == 2
    assert len(events(ae, "user_enrolled")) == 2


def test_no_welcome_unless_asked_and_the_task_welcomes_too(ae, clock):
    ann = ae.user("ann", lastlogin=clock.now() - DAY)
    bob = ae.user("bob")
    quiet, loud = ae.course("Q"), ae.course("L")
    ae.instance(quiet, "autoenrol", mode="view")
    ae.instance(loud, "autoenrol", mode="login", welcome="on")
    access.view_course(ae.site, bob, quiet)
    assert outbox(ae) == []
    process_enrolments(ae.site)
    [mail] = outbox(ae)
    assert mail.to == ann.email and "you have been enrolled in the course" in mail.body


def test_a_user_without_a_usable_address_is_logged_and_still_enrolled(ae):
    ann = ae.user("ann", email="")
    course = ae.course("C1")
    ae.instance(course, "autoenrol", mode="view", welcome="on")
    assert access.view_course(ae.site, ann, course).decision == "granted"
    [missed] = events(ae, "welcome_not_sent")
    assert "cannot queue mail" in missed.reason
