"""Self enrolment through every door: the command line (the key from stdin, in a real
process), the REST API (fields validated, 422 and 429, documented in OpenAPI), the course page
(one form per offer, the key as a password field) and the plugin's own page for teachers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

import pytest
from enrolkit.api import tokens
from enrolkit.models import Group, UserEnrolment
from sqlalchemy import select

ENROLKIT = shutil.which("enrolkit") or os.path.join(os.path.dirname(os.sys.executable), "enrolkit")
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def enrolled(site, instance) -> list[int]:
    site.session.rollback()
    return list(
        site.session.scalars(
            select(UserEnrolment.user_id).where(UserEnrolment.instance_id == instance.id)
        )
    )


# --- the command line ------------------------------------------------------------------------


def test_cli_lists_the_offers_and_takes_the_key_from_stdin(site, course, runtime, user):
    keyed = site.instance(course, "self", key="s3cret-key")
    site.session.commit()
    env = {**os.environ, "ENROLKIT_DATABASE_URL": runtime.url}
    run = lambda *args, input=None: subprocess.run(  # noqa: E731
        [ENROLKIT, *args], capture_output=True, text=True, input=input, env=env, timeout=60
    )
    view = run("course", "view", "ann", "C1")
    assert view.returncode == 0
    assert f"instance {keyed.id}: Self enrolment: enrol with the key (asks: key)" in view.stdout
    wrong = run("course", "enrol-me", "ann", "C1", "--field", "key=-", input="guess\n")
    assert wrong.returncode == 1
    assert wrong.stderr.strip().endswith(
        "wrong enrolment key; ask your teacher for the key of this course"
    )
    assert "Traceback" not in wrong.stderr
    right = run("course", "enrol-me", "ann", "C1", "--field", "key=-", input="s3cret-key\n")
    assert right.returncode == 0 and right.stdout.startswith("granted"), right.stderr
    assert enrolled(site, keyed) == [user("ann").id]


def test_cli_shows_secrets_as_set_and_refuses_a_missing_key(site, course, cli):
    site.instance(course, "self", key="s3cret-key")
    site.session.commit()
    listed = cli("instance", "list", "C1", "--json")
    assert listed.exit_code == 0, listed.output
    assert '"key": "set"' in listed.output and "scrypt" not in listed.output
    missing = cli("course", "enrol-me", "ann", "C1")
    assert missing.exit_code == 1
    assert "key: Missing data for required field." in missing.output


# --- the REST API ----------------------------------------------------------------------------


@pytest.fixture
def api(site, client):
    token = tokens.create(site.site, "lms", tokens.WRITE)
    site.session.commit()

    def call(method: str, path: str, **kwargs):
        headers = {"Authorization": f"Bearer {token}"}
        return client.open(f"/api/v1{path}", method=method, headers=headers, **kwargs)

    return call


def test_api_enrol_me_validates_the_fields_and_limits_attempts(site, course, api, user):
    keyed = site.instance(course, "self", key="s3cret-key")
    site.session.commit()
    view = api("POST", "/events/course-view", json={"username": "ann", "course": "C1"})
    [offer] = view.json["offers"]
    assert offer["instance_id"] == keyed.id
    assert [(f["name"], f["secret"], f["required"]) for f in offer["fields"]] == [
        ("key", True, True)
    ]
    body = {"username": "bob", "course": "C1"}
    missing = api("POST", "/events/enrol-me", json=body)
    assert missing.status_code == 422
    assert missing.json["errors"]["json"]["fields"] == {"key": ["Missing data for required field."]}
    for _ in range(4):
        wrong = api("POST", "/events/enrol-me", json={**body, "fields": {"key": "guess"}})
        assert wrong.status_code == 409 and "wrong enrolment key" in wrong.json["message"]
    stopped = api("POST", "/events/enrol-me", json={**body, "fields": {"key": "s3cret-key"}})
    assert stopped.status_code == 429 and int(stopped.headers["Retry-After"]) > 0
    ok = api("POST", "/events/enrol-me", json={"username": "ann", "course": "C1",
                                                "fields": {"key": "s3cret-key"}})  # fmt: skip
    assert ok.status_code == 200 and ok.json["decision"] == "granted"
    assert enrolled(site, keyed) == [user("ann").id]


def test_api_shows_secrets_as_set_and_documents_the_enrol_me_fields(site, course, api):
    with site.atomic():
        site.session.add(Group(course_id=course.id, name="Red"))
    site.instance(course, "self", key="k", group_keys="Red=red-key")
    site.session.commit()
    [row] = [r for r in api("GET", "/courses/C1/instances").json if r["method"] == "self"]
    assert row["settings"]["key"] == "set" and row["settings"]["group_keys"] == "Red: set"
    method = api("GET", "/methods/self").json
    assert [f["name"] for f in method["enrol_me_fields"]] == ["key"]
    spec = api("GET", "/openapi.json").json
    enrol_me = spec["components"]["schemas"]["EnrolMe"]["properties"]
    assert "fields" in enrol_me and "instance" in enrol_me
    assert "errors.json.fields" in enrol_me["fields"]["description"]


# --- the web ---------------------------------------------------------------------------------


def test_the_course_page_has_a_form_per_offer_and_enrols_with_the_key(
    site, course, app, user, log_in
):
    with site.atomic():
        site.session.add(Group(course_id=course.id, name="Red"))
    open_one = site.instance(course, "self", name="Open door")
    keyed = site.instance(course, "self", name="Red team", group_keys="Red=red-key")
    site.session.commit()
    client = log_in(app.test_client(), "ann")
    page = client.get(f"/course/{course.id}").get_data(as_text=True)
    assert page.count('class="stack enrol-offer"') == 2
    assert f'name="instance" value="{open_one.id}"' in page
    assert f'name="instance" value="{keyed.id}"' in page
    assert page.count('type="password"') == 1  # only the keyed offer asks, without echo
    token = TOKEN.search(page)[1]
    wrong = client.post(
        f"/course/{course.id}/enrol",
        data={"csrf_token": token, "instance": keyed.id, "key": "nope"},
        follow_redirects=True,
    )
    assert "wrong enrolment key" in wrong.get_data(as_text=True)
    client.post(
        f"/course/{course.id}/enrol",
        data={"csrf_token": token, "instance": keyed.id, "key": "red-key"},
    )
    assert enrolled(site, keyed) == [user("ann").id] and enrolled(site, open_one) == []


def test_the_settings_form_never_shows_the_key(site, course, app, log_in):
    instance = site.instance(course, "self", key="s3cret-key")
    site.session.commit()
    client = log_in(app.test_client(), "teach")
    page = client.get(f"/course/{course.id}/manage/instance/{instance.id}").get_data(as_text=True)
    assert "scrypt" not in page and "s3cret" not in page
    assert 'id="f-key" name="key" value=""' in page and "set" in page


def test_the_plugin_page_is_for_the_course_teachers(site, course, app, log_in):
    site.instance(course, "self", maxenrolled=20, key="k")
    site.session.commit()
    teacher = log_in(app.test_client(), "teach")
    page = teacher.get(f"/plugins/enrol_self/course/{course.id}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "0 of 20" in text and "Places taken" in text
    student = log_in(app.test_client(), "ann")
    assert student.get(f"/plugins/enrol_self/course/{course.id}").status_code == 403
    anonymous = app.test_client().get(f"/plugins/enrol_self/course/{course.id}")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]


def test_saving_the_form_keeps_the_key_unless_cleared(site, course, app, log_in):
    instance = site.instance(course, "self", key="s3cret-key")
    site.session.commit()
    stored = instance.settings["key"]
    client = log_in(app.test_client(), "teach")
    url = f"/course/{course.id}/manage/instance/{instance.id}"
    token = TOKEN.search(client.get(url).get_data(as_text=True))[1]
    form = {"csrf_token": token, "name": "", "role": "student", "enabled": "1", "key": ""}
    assert client.post(url, data={**form, "maxenrolled": "3"}).status_code == 302
    site.session.rollback()
    site.session.expire_all()
    assert instance.settings["key"] == stored and instance.settings["maxenrolled"] == 3
    assert client.post(url, data={**form, "key__clear": "1"}).status_code == 302
    site.session.rollback()
    site.session.expire_all()
    assert instance.settings["key"] == ""
