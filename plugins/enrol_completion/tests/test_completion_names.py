"""Issue 16, item 3: a course name holding an HTML entity reads the same in the welcome's subject,
text and HTML body (Moodle's ``format_string``: entities decoded once, escaped once for HTML),
delivered to a real SMTP server, on SQLite and PostgreSQL."""

from __future__ import annotations

import os

from enrolkit import access, mail


def test_an_entity_in_a_course_name_reads_the_same_everywhere(completion_site, smtp, clock):
    site = completion_site
    jean = site.user("jean", firstname="Jean")
    intro = site.course("INTRO", fullname="Orientation &amp; Intake")
    target = site.course("AER", fullname="Application &amp; Eligibility Review")
    site.instance(target, "completion", source="INTRO")
    site.session.commit()

    access.complete_course(site, jean, intro, clock.now())
    assert mail.deliver(site, os.environ["ENROLKIT_SMTP_URL"]).sent == 1
    [message] = smtp.messages
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()

    assert message["Subject"] == "Welcome to Application & Eligibility Review"
    assert "Application & Eligibility Review" in text and "&amp;" not in text
    assert "Orientation & Intake" in text
    assert "Application &amp; Eligibility Review" in html
    assert "&amp;amp;" not in html
