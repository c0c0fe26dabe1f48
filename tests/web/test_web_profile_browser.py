"""In a real browser, on the demo site: an admin edits and deletes a custom profile field (and is
sent to the rule's course when the field is in use), and two people in different time zones see
the same enrolment's start at their own local time."""

from __future__ import annotations

from datetime import UTC, datetime

from browser_site import shot
from enrolkit import lookup
from enrolkit.enrolments import enrol_manually
from enrolkit.models import ProfileField, User
from sqlalchemy import select

#: 2026-09-01 03:30 UTC: 05:30 on the 1st in Paris, 23:30 on 31 August in Montreal.
START = int(datetime(2026, 9, 1, 3, 30, tzinfo=UTC).timestamp())


def _english(runtime, *usernames: str) -> None:
    with runtime.site() as site, site.atomic():
        for user in site.session.scalars(select(User).where(User.username.in_(usernames))):
            user.lang = "en"


def test_an_admin_edits_then_deletes_a_profile_field(server, visit):
    _base, runtime = server
    _english(runtime, "admin")
    page = visit("admin")
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.get_by_role("link", name="Site administration").click()
    page.get_by_role("link", name="Profile fields").first.click()
    page.get_by_label("Short name").fill("campus")
    page.get_by_label("Name", exact=True).fill("Campus")
    page.get_by_role("button", name="Add field").click()
    page.get_by_text("Profile field campus created.").wait_for()

    page.get_by_role("link", name="Edit campus").click()
    page.get_by_label("Name", exact=True).fill("Main campus")
    page.get_by_label("Description").fill("Where the student follows most courses")
    shot(page, "admin-profile-field-edit-en-1280")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("Profile field campus saved.").wait_for()
    assert "Main campus" in page.locator("tr", has_text="campus").inner_text()

    page.get_by_role("link", name="Delete campus").click()
    page.get_by_text("0 users have a value in this field").wait_for()
    page.get_by_role("button", name="Delete profile field").click()
    page.get_by_text("Profile field campus deleted").wait_for()
    with runtime.site() as site:
        assert (
            site.session.scalar(select(ProfileField).where(ProfileField.shortname == "campus"))
            is None
        )
    assert not errors


def test_a_field_a_rule_group_uses_sends_the_admin_to_the_method(server, visit):
    _base, runtime = server
    _english(runtime, "admin")
    page = visit("admin")
    page.goto("/admin/profile-fields")
    page.get_by_role("link", name="Delete department").click()
    page.get_by_role("heading", name="Settings that read this field").wait_for()
    assert page.get_by_role("button", name="Delete profile field").count() == 0
    shot(page, "admin-profile-field-in-use-en-1280")
    page.locator("ul.uses li", has_text="group name template").get_by_role("link").click()
    page.wait_for_url("**/manage/instance/**")
    assert "Groupe_{profile_field_department}" in page.content()


def test_montreal_and_paris_see_the_same_start_at_their_own_local_time(server, visit):
    _base, runtime = server
    _english(runtime, "admin", "jean")
    with runtime.site() as site:
        jean = lookup.user(site.session, "jean")
        physics = lookup.course(site.session, "PHYS101")
        enrol_manually(site, jean, physics, timestart=START)
        course_id = physics.id

    student = visit("jean")
    student.get_by_role("link", name="Jean Dupont").click()
    student.get_by_label("Time zone").select_option("America/Montreal")
    student.get_by_label("Time zone").press("Tab")
    student.get_by_role("button", name="Save").click()
    student.get_by_text("Your preferences are saved.").wait_for()
    shot(student, "profile-time-zone-en-1280")
    student.goto(f"/course/{course_id}")
    assert "31 Aug 2026, 23:30" in student.locator("main table").inner_text()

    admin = visit("admin")  # no zone of their own: the demo site's, Europe/Paris
    admin.goto(f"/course/{course_id}/manage/participants?q=jean")
    assert "1 Sep 2026" in admin.locator("table.participants").inner_text()

    student.get_by_role("link", name="Jean Dupont").click()
    student.get_by_label("Time zone").select_option("")  # back to the site's
    student.get_by_role("button", name="Save").click()
    student.get_by_text("Your preferences are saved.").wait_for()
