"""Attacks on the inputs the profile-field pages and the per-user time zone opened: a student
setting someone else's zone or a hostile one, a zone planted in the database, markup in a
field's description, a forged or non-admin deletion of a field. SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from enrolkit.models import ProfileData, ProfileField, User
from sqlalchemy import func, select


@pytest.fixture
def campus(sec_runtime, cast) -> int:
    with sec_runtime.site() as site, site.atomic():
        field = ProfileField(shortname="campus", name="Campus")
        site.session.add(field)
        site.session.flush()
        site.session.add(ProfileData(user_id=cast.student.id, field_id=field.id, value="Nord"))
        return field.id


def _zone(runtime, user_id: int) -> str:
    with runtime.site() as site:
        return site.session.get(User, user_id).timezone


def test_a_student_cannot_set_another_users_time_zone(as_user, form_post, cast, sec_runtime):
    student = as_user("student")
    response = form_post(student, f"/user/{cast.bob.id}", lang="en", timezone="Asia/Tokyo")
    assert response.status_code == 403
    assert _zone(sec_runtime, cast.bob.id) == ""


@pytest.mark.parametrize(
    "zone",
    [
        "../../../../etc/passwd",
        "/usr/share/zoneinfo/Europe/Paris",
        "Europe/Paris\x00",
        "Europe/Paris\r\nSet-Cookie: a=b",
        "localtime",
        "posix/Europe/Paris",
        "é" * 5000,
        "<script>alert(1)</script>",
    ],
)
def test_a_hostile_time_zone_is_refused_and_nothing_is_stored(
    as_user, form_post, cast, sec_runtime, zone
):
    student = as_user("student")
    response = form_post(student, f"/user/{cast.student.id}", lang="en", timezone=zone)
    assert response.status_code == 302
    page = student.get(response.headers["Location"]).get_data(as_text=True)
    assert "not a time zone of the list" in page
    assert "<script>alert(1)</script>" not in page
    assert _zone(sec_runtime, cast.student.id) == ""


def test_a_zone_planted_in_the_database_falls_back_to_the_sites(as_user, cast, sec_runtime):
    """A zone the list lacks (a restored dump, a hand-edited row) never breaks a page."""
    with sec_runtime.site() as site, site.atomic():
        site.session.get(User, cast.student.id).timezone = "Mars/Olympus_Mons"
    student = as_user("student")
    assert student.get("/").status_code == 200
    assert student.get(f"/course/{cast.course.id}").status_code == 200
    assert student.get(f"/user/{cast.student.id}").status_code == 200
    # The language menu still works for them (it does not post a zone).
    token = student.get("/").get_data(as_text=True).split('name="csrf_token" value="')[1]
    student.post("/language", data={"lang": "fr", "next": "/", "csrf_token": token.split('"')[0]})
    with sec_runtime.site() as site:
        assert site.session.get(User, cast.student.id).lang == "fr"


def test_markup_in_a_fields_description_is_shown_as_text(
    as_user, form_post, cast, campus, sec_runtime
):
    admin = as_user("admin")
    form_post(admin, f"/admin/profile-fields/{campus}", shortname="campus", name="Campus",
              description='<img src=x onerror="alert(1)">')  # fmt: skip
    page = admin.get(f"/admin/users/{cast.student.id}").get_data(as_text=True)
    assert "<img src=x" not in page and "&lt;img src=x" in page


@pytest.mark.parametrize("who", ["teacher", "assistant", "student"])
def test_only_an_admin_deletes_or_renames_a_field(
    as_user, form_post, cast, campus, sec_runtime, who
):
    client = as_user(who)
    assert form_post(client, f"/admin/profile-fields/{campus}/delete").status_code == 403
    renamed = form_post(client, f"/admin/profile-fields/{campus}", shortname="x", name="x")
    assert renamed.status_code == 403
    with sec_runtime.site() as site:
        assert site.session.get(ProfileField, campus).shortname == "campus"


def test_a_deletion_without_the_forms_token_is_refused(as_user, cast, campus, sec_runtime):
    admin = as_user("admin")
    forged = admin.post(f"/admin/profile-fields/{campus}/delete", data={})
    assert forged.status_code == 400
    with sec_runtime.site() as site:
        assert site.session.get(ProfileField, campus) is not None
        count = select(func.count()).select_from(ProfileData).where(ProfileData.field_id == campus)
        assert site.session.scalar(count) == 1


@pytest.mark.parametrize(
    "shortname", ["campus%", "camp us", "campus'--", "cämpus", "c" * 101, "username", ""]
)
def test_a_malformed_short_name_is_refused(
    as_user, form_post, cast, campus, sec_runtime, shortname
):
    admin = as_user("admin")
    response = form_post(admin, f"/admin/profile-fields/{campus}", shortname=shortname, name="x")
    assert response.status_code == 400
    assert 'class="flash flash-error"' in response.get_data(as_text=True)
    with sec_runtime.site() as site:
        assert site.session.get(ProfileField, campus).shortname == "campus"


def test_the_last_second_of_year_9999_east_of_utc_never_breaks_a_page(as_user, cast, sec_runtime):
    """A zone ahead of UTC would put the latest time an enrolment may hold in year 10000; the
    page shows it in UTC instead of failing."""
    from enrolkit.clock import MAX_TIME
    from enrolkit.models import EnrolInstance, UserEnrolment

    with sec_runtime.site() as site, site.atomic():
        enrolment = site.session.scalar(
            select(UserEnrolment)
            .join(EnrolInstance, EnrolInstance.id == UserEnrolment.instance_id)
            .where(UserEnrolment.user_id == cast.student.id)
        )
        enrolment.timeend, enrolment_id = MAX_TIME, enrolment.id
        for user in (cast.student, cast.teacher):
            site.session.get(User, user.id).timezone = "Pacific/Kiritimati"
    student_page = as_user("student").get(f"/course/{cast.course.id}")
    assert student_page.status_code == 200
    assert "31 Dec 9999, 23:59 UTC" in student_page.get_data(as_text=True)
    teacher = as_user("teacher")
    course = f"/course/{cast.course.id}/manage"
    assert teacher.get(f"{course}/participants").status_code == 200
    edit = teacher.get(f"{course}/enrolment/{enrolment_id}")
    assert edit.status_code == 200 and 'value="9999-12-31"' in edit.get_data(as_text=True)
