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


def test_a_first_login_into_several_courses_queues_each_welcome_in_the_users_language(ae):
    """The welcomes of a login into three courses are queued together: one per course, each
    with its own course and template, in the reader's language."""
    lea = ae.user("lea", firstname="Léa", email="lea@school.example", lang="fr")
    courses = [ae.course(f"C{n}", fullname=f"Cours {n}") for n in range(3)]
    for number, course in enumerate(courses):
        template = TEMPLATE if number else "Salut {{ user.firstname }} ({{ user.username }})"
        ae.instance(course, "autoenrol", mode="login", welcome="on", welcome_template=template)
    login(ae.site, lea)
    mails = outbox(ae)
    assert sorted(m.subject for m in mails) == [
        f"Bienvenue dans le cours Cours {n}" for n in range(3)
    ]
    assert sorted(m.body for m in mails)[2] == "Salut Léa (lea)"
    assert {m.to for m in mails} == {"lea@school.example"}


def test_a_user_who_cannot_be_mailed_is_logged_and_still_enrolled_everywhere(ae):
    bad = ae.user("bad", email="not an address")
    courses = [ae.course(f"C{n}") for n in range(2)]
    for course in courses:
        ae.instance(course, "autoenrol", mode="login", welcome="on")
    login(ae.site, bad)
    assert outbox(ae) == []
    assert len(events(ae, "user_enrolled")) == 2
    assert len(events(ae, "welcome_not_sent")) == 2
