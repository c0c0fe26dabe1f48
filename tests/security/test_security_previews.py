"""Issue 12: a teacher read any user's profile through the template previews (medium item 3),
and previews, which run user-written code, could be fired without limit (high item 2)."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

import pytest
from enrolkit import people, throttle
from enrolkit.enrolments import enrol_manually
from enrolkit.models import ProfileData, ProfileField
from enrolkit.testing import SiteFactory
from enrolkit.web import create_app

PASSWORD = "correct-horse-battery"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
#: What the issue's teacher wrote to read another user's profile.
SNOOP = "{{ user.email }} {{ user.profile }} {{ user.city }} {{ user.idnumber }}"


@dataclass
class World:
    course_id: int


@pytest.fixture
def world(make_runtime, any_db):
    runtime = make_runtime(url=any_db, entry_points=True)
    with runtime.site() as site, site.atomic():
        f = SiteFactory(site)
        password = people.hash_password(PASSWORD)
        field = ProfileField(shortname="salary", name="Salary")
        site.session.add(field)
        admin = f.user("admin", siteadmin=True, email="root@secret.example", city="Adminville")
        teacher = f.user("teacher", department="Maths", city="Teachtown")
        student = f.user("student", firstname="Jean", city="Lyon", idnumber="ST-42",
                         department="IT", email="jean@school.example")  # fmt: skip
        outsider = f.user("outsider", city="Faraway", department="HR")
        for user in (admin, teacher, student, outsider):
            user.password_hash = password
        site.session.flush()
        for user, value in ((admin, "999999"), (student, "1234")):
            site.session.add(ProfileData(user_id=user.id, field_id=field.id, value=value))
        course = f.course("MATH101", fullname="Maths")
        enrol_manually(site, teacher, course, role=f.role("editingteacher"))
        enrol_manually(site, student, course)
        course_id = course.id
    app = create_app({"TESTING": True, "PREVIEW_LIMIT": 5}, runtime=runtime)
    return app, World(course_id), runtime


def _token(client) -> str:
    page = client.get("/login")
    if page.status_code == 302:
        page = client.get("/")
    return _TOKEN.search(page.get_data(as_text=True)).group(1)


@pytest.fixture
def as_user(world):
    app = world[0]

    def make(username: str):
        client = app.test_client()
        answer = client.post(
            "/login",
            data={"username": username, "password": PASSWORD, "csrf_token": _token(client)},
        )
        assert answer.status_code == 302, answer.get_data(as_text=True)
        return client

    return make


def _post(client, url: str, **fields):
    fields.setdefault("csrf_token", _token(client))
    return client.post(url, data=fields)


def _welcome(world) -> str:
    return f"/course/{world[1].course_id}/manage/welcome"


def _groups(world) -> str:
    return f"/course/{world[1].course_id}/manage/groups"


def test_a_teacher_cannot_preview_the_admin(world, as_user):
    teacher = as_user("teacher")
    live = _post(teacher, _welcome(world) + "/preview", source=SNOOP, user="admin")
    assert live.status_code == 403
    body = live.get_data(as_text=True)
    assert "root@secret.example" not in body and "999999" not in body
    assert "participant of this course" in live.get_json()["problems"][0]

    page = _post(teacher, _welcome(world), source=SNOOP, user="admin", action="preview")
    assert page.status_code == 403
    text = page.get_data(as_text=True)
    assert "root@secret.example" not in text and "Adminville" not in text


def test_a_teacher_cannot_preview_someone_outside_the_course(world, as_user):
    live = _post(as_user("teacher"), _welcome(world) + "/preview", source=SNOOP, user="outsider")
    assert live.status_code == 403 and "Faraway" not in live.get_data(as_text=True)


def test_a_teacher_sees_of_a_participant_only_what_the_participants_page_shows(world, as_user):
    live = _post(as_user("teacher"), _welcome(world) + "/preview", source=SNOOP, user="student")
    assert live.status_code == 200
    assert live.get_json()["text"].strip() == (
        "jean@school.example {'salary': '[profile_field_salary]'} [city] [idnumber]"
    )


def test_the_sample_user_and_the_author_themself(world, as_user):
    teacher = as_user("teacher")
    sample = _post(teacher, _welcome(world) + "/preview", source=SNOOP, user="sample.student")
    assert sample.get_json()["text"].strip() == (
        "sam.sample@example.org {'salary': 'sample salary'} Sampleville S-0001"
    )
    blank = _post(teacher, _welcome(world) + "/preview", source="{{ user.city }}", user="")
    assert blank.get_json()["text"].strip() == "Sampleville"
    own = _post(teacher, _welcome(world) + "/preview", source="{{ user.city }}", user="teacher")
    assert own.get_json()["text"].strip() == "Teachtown"


def test_an_admin_keeps_full_previews(world, as_user):
    live = _post(as_user("admin"), _welcome(world) + "/preview", source=SNOOP, user="outsider")
    assert live.status_code == 200 and "Faraway" in live.get_json()["text"]


def test_the_group_preview_keeps_to_the_same_rules(world, as_user):
    teacher = as_user("teacher")
    page = _post(teacher, _groups(world), source="G_{department}_{city}", user="admin",
                 action="preview")  # fmt: skip
    text = page.get_data(as_text=True)
    assert "participant of this course" in text
    assert "Adminville" not in text and "Lyon" not in text and "_IT_" not in text
    assert "G_[department]_[city]" in text  # the participant, masked
    assert "G_Sample department_Sampleville" in text  # the sample user
    assert "G_Maths_Teachtown" in text  # the teacher themself

    admin = _post(as_user("admin"), _groups(world), source="G_{city}", user="outsider",
                  action="preview")  # fmt: skip
    admin_text = admin.get_data(as_text=True)
    assert "G_Faraway" in admin_text and "G_Lyon" in admin_text


def test_previews_are_rate_limited_per_user(world, as_user):
    teacher, admin = as_user("teacher"), as_user("admin")
    url = _welcome(world) + "/preview"
    for _ in range(5):
        assert _post(teacher, url, source="Hi", user="").status_code == 200
    refused = _post(teacher, url, source="Hi", user="")
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.get_json()["problems"][0].startswith("Too many previews: wait")
    page = _post(teacher, _welcome(world), source="Hi", user="", action="preview")
    assert page.status_code == 429 and "Too many previews" in page.get_data(as_text=True)
    assert _post(admin, url, source="Hi", user="").status_code == 200  # per user


def test_the_limit_holds_under_parallel_requests(world):
    """Twenty requests at once, each on its own connection: exactly the limit passes."""
    runtime = world[2]
    allowed: list[int] = []
    barrier = threading.Barrier(20)

    def attempt():
        with runtime.site() as site:
            barrier.wait()
            allowed.append(throttle.take(site, "preview:race", limit=5, window=60))

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(allowed)[:5] == [0] * 5 and all(wait > 0 for wait in sorted(allowed)[5:])
