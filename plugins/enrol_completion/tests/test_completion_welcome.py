"""The welcome message: rendered from the instance's template, queued once per completion and
delivered over SMTP to a real server (aiosmtpd on loopback)."""

from __future__ import annotations

import socket
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller
from enrolkit import access, mail, pending
from enrolkit.enrolments import list_enrolments
from enrolkit.expiry import enforce_end_dates
from enrolkit.models import LogEntry, MailMessage
from sqlalchemy import func, select

DAY = 86_400


class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    def __init__(self):
        self.envelopes = []

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        return "250 OK"


@pytest.fixture
def smtp_url():
    """An SMTP server on a free loopback port; yields (its URL, its inbox)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, server_hostname="mail.test")
    controller.start()
    yield f"smtp://127.0.0.1:{port}?from=noreply@school.example", inbox
    controller.stop()


def fire_again(site, user, course, timecompleted):
    """The LMS sends the same completion event once more (a retry, a second aggregation run)."""
    with site.atomic():
        site.plugins.on_completion(site=site, user=user, course=course, timecompleted=timecompleted)


def queued(site) -> int:
    count = site.session.scalar(select(func.count()).select_from(MailMessage))
    site.session.rollback()
    return count


def test_the_welcome_is_delivered_once_with_the_rendered_template(completion_site, smtp_url, clock):
    site = completion_site
    url, inbox = smtp_url
    jean = site.user("jean", firstname="Jean")
    algebra = site.course("ALG1", fullname="Algebra I")
    target = site.course("ALG2", fullname="Algebra & Geometry")
    template = (
        "<p>Bravo {{ firstname }}! You finished {{ completed_course.fullname }} "
        "({$a->completed}); welcome to {{ course.fullname }} as {{ enrolment.role }}.</p>"
    )
    site.instance(target, "completion", source="ALG1", welcome_template=template)
    site.session.commit()
    completed = clock.now()

    access.complete_course(site, jean, algebra, completed)
    clock.advance(60)
    fire_again(site, jean, algebra, completed)  # the enrolment is updated, not mailed again

    assert mail.deliver(site, url).sent == 1
    assert mail.deliver(site, url).sent == 0
    [envelope] = inbox.envelopes
    assert envelope.rcpt_tos == ["jean@example.org"]
    message = message_from_bytes(envelope.original_content, policy=policy.default)
    assert message["Subject"] == "Welcome to Algebra & Geometry"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    expected = "Bravo Jean! You finished Algebra I (Algebra I); welcome to Algebra & Geometry"
    assert f"{expected} as Student." in text
    assert "welcome to Algebra &amp; Geometry as Student." in html


def test_an_enrolled_user_is_updated_never_enrolled_twice(completion_site, clock):
    site = completion_site
    jean = site.user("jean")
    source = site.course("A")
    target = site.course("B")
    site.instance(target, "completion", source="A", duration=7 * DAY)
    site.session.commit()
    completed = clock.now()
    access.complete_course(site, jean, source, completed)
    clock.advance(10 * DAY)
    enforce_end_dates(site)  # the site's expiry action: suspend and remove the roles
    [ended] = list_enrolments(site, target)
    assert (ended["status"], ended["roles"]) == ("suspended", [])

    fire_again(site, jean, source, completed)

    [row] = list_enrolments(site, target)
    now = clock.now()
    assert (row["status"], row["roles"]) == ("active", ["student"])
    assert (row["timestart"], row["timeend"]) == (now, now + 7 * DAY)
    assert queued(site) == 1


def test_a_user_who_cannot_be_mailed_is_enrolled_and_logged(completion_site):
    site = completion_site
    nomail = site.user("nomail", email="")
    source = site.course("A")
    target = site.course("B")
    site.instance(target, "completion", source="A")
    site.session.commit()

    access.complete_course(site, nomail, source, site.now())

    assert [row["username"] for row in list_enrolments(site, target)] == ["nomail"]
    reasons = site.session.scalars(
        select(LogEntry.reason).where(LogEntry.event == "welcome_not_sent")
    ).all()
    assert len(reasons) == 1 and "not a single email address" in reasons[0]
    assert queued(site) == 0


def test_no_welcome_when_switched_off(completion_site):
    site = completion_site
    jean = site.user("jean")
    source = site.course("A")
    site.instance(site.course("B"), "completion", source="A", welcome="off")
    site.session.commit()

    access.complete_course(site, jean, source, site.now())

    assert queued(site) == 0


def test_a_delayed_enrolment_is_welcomed_when_it_is_made(completion_site, clock):
    site = completion_site
    jean = site.user("jean")
    source = site.course("A")
    target = site.course("B")
    site.instance(target, "completion", source="A", delay=DAY, group="Next step")
    site.session.commit()
    completed = clock.now()
    access.complete_course(site, jean, source, completed)
    assert pending.apply_due(site).startswith("applied 0")
    assert (list_enrolments(site, target), queued(site)) == ([], 0)

    clock.advance(DAY)
    assert pending.apply_due(site).startswith("applied 1")
    assert pending.apply_due(site).startswith("applied 0")

    [row] = list_enrolments(site, target)
    assert (row["timestart"], row["roles"], row["groups"]) == (
        completed + DAY,
        ["student"],
        ["Next step"],
    )
    assert queued(site) == 1
