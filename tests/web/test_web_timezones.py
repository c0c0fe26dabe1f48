"""Each user's time zone (Moodle's per-user ``timezone``, "server time zone" by default): pages
show dates in the reader's zone, dates typed in forms are read in it, and a zone outside the
IANA list is refused. Run on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from enrolkit import people
from enrolkit.models import EnrolInstance, User, UserEnrolment
from sqlalchemy import select

#: 2026-09-01 03:30 UTC: 05:30 on the 1st in Paris, 23:30 on 31 August in Montreal.
START = int(datetime(2026, 9, 1, 3, 30, tzinfo=UTC).timestamp())


@pytest.fixture
def web_runtime(make_runtime, any_db):
    """Every installed plugin, on each backend."""
    return make_runtime(url=any_db, entry_points=True)


def _set(runtime, username: str, **values) -> None:
    with runtime.site() as site, site.atomic():
        user = site.session.scalar(select(User).where(User.username == username))
        for key, value in values.items():
            setattr(user, key, value)


def _enrolment(runtime, world) -> int:
    """The student's manual enrolment in MATH101, starting at :data:`START`."""
    with runtime.site() as site, site.atomic():
        enrolment = site.session.scalar(
            select(UserEnrolment)
            .join(EnrolInstance, EnrolInstance.id == UserEnrolment.instance_id)
            .where(UserEnrolment.user_id == world.student.id, EnrolInstance.method == "manual")
        )
        enrolment.timestart = START
        return enrolment.id


def _stored(runtime, enrolment_id: int) -> int:
    with runtime.site() as site:
        return site.session.get(UserEnrolment, enrolment_id).timestart


def test_montreal_and_paris_see_the_same_start_at_their_own_local_time(
    world, client_as, web_runtime
):
    enrolment_id = _enrolment(web_runtime, world)
    _set(web_runtime, "admin", timezone="America/Montreal")
    _set(web_runtime, "teacher", timezone="Europe/Paris")
    montreal, paris = client_as("admin"), client_as("teacher")
    course = f"/course/{world.course.id}/manage"
    assert "31 Aug 2026" in montreal.get(f"{course}/participants").get_data(as_text=True)
    assert "1 Sep 2026" in paris.get(f"{course}/participants").get_data(as_text=True)
    form = f"{course}/enrolment/{enrolment_id}"
    assert 'value="2026-08-31"' in montreal.get(form).get_data(as_text=True)
    assert 'value="2026-09-01"' in paris.get(form).get_data(as_text=True)
    # The student's own course page shows the time too, in their zone.
    _set(web_runtime, "student", timezone="Europe/Paris")
    student_view = client_as("student").get(f"/course/{world.course.id}").get_data(as_text=True)
    assert "1 Sep 2026, 05:30" in student_view


def test_a_user_without_a_zone_reads_dates_in_the_sites(world, client_as, web_runtime):
    enrolment_id = _enrolment(web_runtime, world)
    with web_runtime.site() as site, site.atomic():
        site.set_config("core", "timezone", "America/Montreal")
    page = client_as("teacher").get(f"/course/{world.course.id}/manage/enrolment/{enrolment_id}")
    assert 'value="2026-08-31"' in page.get_data(as_text=True)


@pytest.mark.parametrize(
    ("zone", "midnight"),
    [
        ("America/Montreal", "2026-09-01T04:00:00+00:00"),
        ("Europe/Paris", "2026-08-31T22:00:00+00:00"),
    ],
)
def test_a_date_typed_in_a_form_is_read_in_the_readers_zone(
    world, client_as, post, web_runtime, zone, midnight
):
    enrolment_id = _enrolment(web_runtime, world)
    _set(web_runtime, "teacher", timezone=zone)
    teacher = client_as("teacher")
    url = f"/course/{world.course.id}/manage/enrolment/{enrolment_id}"
    post(teacher, url, status="active", timestart="2026-09-01", timeend="")
    stored = datetime.fromtimestamp(_stored(web_runtime, enrolment_id), UTC)
    assert stored.isoformat() == midnight
    assert 'value="2026-09-01"' in teacher.get(url).get_data(as_text=True)


def test_a_settings_time_is_shown_and_read_in_the_readers_zone(world, client_as, post, web_runtime):
    pytest.importorskip("enrol_autoenrol")
    from enrolkit.enrolments import add_instance

    with web_runtime.site() as site:
        site.set_method_enabled("autoenrol", True)
        instance = add_instance(site, world.course, "autoenrol", {"mode": "login"}).instance
    _set(web_runtime, "admin", timezone="Europe/Paris")
    admin = client_as("admin")
    url = f"/course/{world.course.id}/manage/instance/{instance.id}"
    form = admin.get(url).get_data(as_text=True)
    assert 'name="enrolstart" value=""' in form
    post(admin, url, mode="login", enrolstart="2026-09-01T08:00")
    with web_runtime.site() as site:
        stored = site.session.get(EnrolInstance, instance.id).settings["enrolstart"]
    assert datetime.fromtimestamp(stored, UTC).isoformat() == "2026-09-01T06:00:00+00:00"
    assert 'name="enrolstart" value="2026-09-01T08:00"' in admin.get(url).get_data(as_text=True)


def test_a_user_chooses_their_zone_beside_their_language(world, client_as, post, web_runtime):
    student = client_as("student")
    url = f"/user/{world.student.id}"
    page = student.get(url).get_data(as_text=True)
    assert '<option value="America/Montreal">' in page
    assert "Site time zone (UTC)" in page
    done = post(student, url, follow=True, lang="en", timezone="America/Montreal")
    assert "Your preferences are saved." in done.get_data(as_text=True)
    assert '<option value="America/Montreal" selected>' in done.get_data(as_text=True)
    post(student, url, lang="en", timezone="")  # back to the site's
    with web_runtime.site() as site:
        assert site.session.get(User, world.student.id).timezone == ""


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "localtime", "../../etc/passwd", "x" * 300])
def test_a_zone_outside_the_list_is_refused_with_a_clear_error(
    world, client_as, post, web_runtime, zone
):
    _set(web_runtime, "student", timezone="Europe/Paris")
    own = post(client_as("student"), f"/user/{world.student.id}", follow=True, lang="en",
               timezone=zone)  # fmt: skip
    assert "not a time zone of the list. Choose one such as Europe/Paris" in own.get_data(
        as_text=True
    )
    admin = post(client_as("admin"), f"/admin/users/{world.student.id}", follow=True,
                 action="profile", firstname="Jean", timezone=zone)  # fmt: skip
    assert "not a time zone of the list" in admin.get_data(as_text=True)
    with web_runtime.site() as site:
        assert site.session.get(User, world.student.id).timezone == "Europe/Paris"


def test_the_admin_sets_a_users_zone_on_their_profile(world, client_as, post, web_runtime):
    admin = client_as("admin")
    url = f"/admin/users/{world.student.id}"
    fields = {"action": "profile", "firstname": "Jean", "lastname": "Dupont", "department": "IT"}
    post(admin, url, timezone="Europe/Paris", **fields)
    with web_runtime.site() as site:
        assert site.session.get(User, world.student.id).timezone == "Europe/Paris"
    assert '<option value="Europe/Paris" selected>' in admin.get(url).get_data(as_text=True)


def test_every_entrance_refuses_a_bad_zone(world, web_runtime):
    """``user set``, the API and CSV import share the check (a one-line error naming it)."""
    with web_runtime.site() as site:
        student = site.session.get(User, world.student.id)
        with pytest.raises(people.EnrolkitError, match="not a time zone; give an IANA name"):
            people.set_fields(site, student, {"timezone": "Europe/Pariss"})
        assert people.set_fields(site, student, {"timezone": "Europe/Paris"}) == ["timezone"]
