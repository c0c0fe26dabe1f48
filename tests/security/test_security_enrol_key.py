"""Attacks on self enrolment's key (enrol_self, through the core's "Enrol me"): guessing it,
reading it back, enrolling through an instance the course does not offer, and opening the
plugin's own page without the right. On each backend."""

from __future__ import annotations

import pytest
from enrolkit.enrolments import add_instance
from enrolkit.models import EnrolInstance, LogEntry, UserEnrolment
from sqlalchemy import select

pytest.importorskip("enrol_self")

KEY = "correct-key-1234"


@pytest.fixture
def keyed(sec_runtime, cast):
    """MATH101 with a keyed self-enrolment instance, and a disabled one without a key."""
    with sec_runtime.site() as site, site.atomic():
        site.set_method_enabled("self", True)
        course = site.session.merge(cast.course)
        keyed = add_instance(site, course, "self", {"key": KEY}).instance
        hidden = add_instance(site, course, "self", {"enabled": "off"}).instance
        return keyed.id, hidden.id


def enrolled(sec_runtime, instance_id: int) -> list[int]:
    with sec_runtime.site() as site:
        return list(
            site.session.scalars(
                select(UserEnrolment.user_id).where(UserEnrolment.instance_id == instance_id)
            )
        )


def test_guessing_the_key_is_stopped_on_every_door(
    api, as_user, form_post, keyed, cast, sec_runtime
):
    keyed_id, _hidden = keyed
    body = {"username": "bob", "course": "MATH101", "instance": keyed_id}
    for guess in range(5):
        answer = api("POST", "/events/enrol-me", json={**body, "fields": {"key": f"g{guess}"}})
        assert answer.status_code == 409
    stopped = api("POST", "/events/enrol-me", json={**body, "fields": {"key": KEY}})
    assert stopped.status_code == 429 and stopped.headers["Retry-After"].isdigit()
    # the web counts the same attempts: the right key through the form is refused too
    client = as_user("bob")
    page = form_post(client, f"/course/{cast.course.id}/enrol", instance=keyed_id, key=KEY)
    assert page.status_code == 302
    assert "too many attempts" in client.get(page.headers["Location"]).get_data(as_text=True)
    assert enrolled(sec_runtime, keyed_id) == []
    with sec_runtime.site() as site:
        reasons = site.session.scalars(
            select(LogEntry.reason).where(LogEntry.event == "enrol_me_refused")
        ).all()
    assert len(reasons) == 5 and not any("g1" in reason for reason in reasons)


def test_the_key_never_leaves_the_database(api, as_user, keyed, cast, sec_runtime):
    keyed_id, _hidden = keyed
    with sec_runtime.site() as site:
        stored = site.session.get(EnrolInstance, keyed_id).settings["key"]
    assert KEY not in stored
    listed = api("GET", "/courses/MATH101/instances").get_data(as_text=True)
    teacher = as_user("teacher")
    form = teacher.get(f"/course/{cast.course.id}/manage/instance/{keyed_id}").get_data(
        as_text=True
    )
    course_page = as_user("bob").get(f"/course/{cast.course.id}").get_data(as_text=True)
    for text in (listed, form, course_page):
        assert stored not in text and KEY not in text and "scrypt:" not in text


def test_an_instance_the_course_does_not_offer_cannot_be_used(api, keyed, sec_runtime):
    _keyed, hidden_id = keyed
    answer = api(
        "POST",
        "/events/enrol-me",
        json={"username": "bob", "course": "MATH101", "instance": hidden_id},
    )
    assert answer.status_code == 409
    assert f"instance {hidden_id} offers you no enrolment in MATH101" in answer.json["message"]
    assert enrolled(sec_runtime, hidden_id) == []


def test_the_plugin_page_is_closed_to_students_and_other_teachers(as_user, keyed, cast):
    url = f"/plugins/enrol_self/course/{cast.course.id}"
    assert as_user("teacher").get(url).status_code == 200
    for outsider in ("student", "bob"):
        assert as_user(outsider).get(url).status_code == 403
