"""Issue 12, Low: hostile input at the web and API gets a clear 4xx, never a 500 or a traceback:
huge page numbers, query arguments aimed at ``url_for``, long upload names, deeply nested JSON
and rules, over-long fields and line breaks in emails."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from enrolkit.models import Course, User
from enrolkit.testing import SiteFactory
from enrolkit.web import create_app
from sqlalchemy import select

ENROLKIT = str(Path(sys.executable).with_name("enrolkit"))
HUGE = "99999999999999999999999"
#: A flat file to upload under hostile names.
UPLOAD = b"operation,username,course,role\nadd,student,PHYS101,student\n"


def _deep_rule(groups: int) -> str:
    leaf = '{"type": "profile", "sf": "department", "op": "isequalto", "v": "IT"}'
    return '{"op": "&", "c": [' * groups + leaf + "]}" * groups


def _shell(any_db, tmp_path, *args: str, input: str | None = None):
    env = {**os.environ, "ENROLKIT_HOME": str(tmp_path / "home"), "ENROLKIT_DATABASE_URL": any_db}
    return subprocess.run(
        [ENROLKIT, *args], capture_output=True, text=True, input=input, env=env, timeout=120
    )


def _clean(text: str) -> None:
    assert "Traceback" not in text and "internal error" not in text and "Error:" not in text


# --- pagers -----------------------------------------------------------------------------------


def test_a_page_number_out_of_range_is_a_400_with_the_rule(as_user, cast):
    client = as_user("admin")
    for url in (
        "/courses",
        "/admin/users",
        "/admin/cohorts",
        "/admin/mail",
        f"/course/{cast.course.id}/manage/participants",
    ):
        for page in (HUGE, "-1", "0", "abc", "1e9"):
            response = client.get(f"{url}?page={page}")
            assert response.status_code == 400, (url, page)
            assert "The page number must be a whole number from 1 to 1000000." in (
                response.get_data(as_text=True)
            )


@pytest.fixture
def paged_app(sec_runtime, cast):
    """The app with one item per page, so every list shows its pager."""
    with sec_runtime.site() as site, site.atomic():
        factory = SiteFactory(site)
        for number in range(3):
            factory.course(f"EXTRA{number}", category="Sciences", fullname=f"Extra {number}")
    return create_app({"TESTING": True, "PAGE_SIZE": 1}, runtime=sec_runtime)


def test_query_arguments_never_reach_url_for(paged_app, cast):
    from web_world import log_in

    client = paged_app.test_client()
    assert log_in(client, "admin").status_code == 302
    hostile = "_method=DELETE&_external=1&_scheme=javascript&_anchor=x&page=2"
    for url in ("/courses", f"/course/{cast.course.id}/manage/participants", "/admin/users"):
        response = client.get(f"{url}?{hostile}")
        assert response.status_code == 200, url
        page = response.get_data(as_text=True)
        links = [part.split('"')[0] for part in page.split('href="')[1:]]
        pager = [link for link in links if "page=" in link]
        assert pager, url
        for link in pager:
            assert link.startswith("/"), link  # not _external, not another scheme
            assert "#" not in link and "_method" not in link, link


# --- upload names -----------------------------------------------------------------------------


def test_a_300_character_upload_name_is_a_422_on_the_api(api):
    name = "u" * 296 + ".csv"
    response = api(
        "POST",
        "/users/import",
        data={"file": (io.BytesIO(b"username,email,firstname,lastname\n"), name)},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    message = response.get_json()["errors"]["files"]["file"][0]
    assert "the file name has 300 characters; at most 200 are accepted" in message


def test_a_300_character_upload_name_is_a_form_error_on_the_web(as_user, sec_runtime):
    from web_world import csrf_token

    with sec_runtime.site() as site, site.atomic():
        site.set_method_enabled("flatfile", True)
    admin = as_user("admin")
    response = admin.post(
        "/admin/flatfile/upload",
        data={
            "csrf_token": csrf_token(admin),
            "file": (io.BytesIO(b"add,student,jean,MATH101\n"), "f" * 296 + ".csv"),
        },
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert response.status_code == 200
    assert "The file name is longer than 200 characters" in response.get_data(as_text=True)


def test_an_upload_never_overwrites_and_processed_names_are_refused(drop, client_as, csrf):
    admin = client_as("admin")
    for name in ("enrol.csv", "enrol.csv"):
        admin.post(
            "/admin/flatfile/upload",
            data={"csrf_token": csrf(admin), "file": (io.BytesIO(UPLOAD), name)},
            content_type="multipart/form-data",
        )
    assert sorted(p.name for p in drop.iterdir()) == ["enrol.csv", "enrol.csv.2"]
    response = admin.post(
        "/admin/flatfile/upload",
        data={"csrf_token": csrf(admin), "file": (io.BytesIO(UPLOAD), "x.csv.done")},
        content_type="multipart/form-data",
        follow_redirects=True,
    )
    assert "kept for processed files" in response.get_data(as_text=True)


# --- nesting ----------------------------------------------------------------------------------


def test_a_json_body_nested_100000_deep_is_a_400(api):
    body = "[" * 100_000 + "]" * 100_000
    response = api("PATCH", "/users/bob", data=body, content_type="application/json")
    assert response.status_code == 400
    assert "at most 100 are accepted" in response.get_json()["message"]


@pytest.fixture
def autoenrol_on(sec_runtime):
    with sec_runtime.site() as site, site.atomic():
        site.set_method_enabled("autoenrol", True)


def test_a_rule_nested_10000_deep_is_a_422_on_the_api(api, autoenrol_on):
    response = api(
        "POST",
        "/courses/MATH101/instances",
        json={"method": "autoenrol", "settings": {"rule": _deep_rule(5000)}},
    )
    assert response.status_code == 422
    assert "JSON nested 10001 levels deep; at most 100 are accepted" in json.dumps(
        response.get_json()
    )


def test_a_rule_nested_10000_deep_is_refused_by_the_shell(any_db, tmp_path, sec_app, autoenrol_on):
    result = _shell(
        any_db, tmp_path, "instance", "add", "MATH101", "autoenrol", f"rule={_deep_rule(5000)}"
    )
    assert result.returncode != 0
    assert result.stderr.count("\n") == 1, result.stderr
    assert "rule: JSON nested 10001 levels deep; at most 100 are accepted" in result.stderr


def test_a_rule_nested_10000_deep_is_a_form_error_on_the_web(
    as_user, form_post, cast, autoenrol_on
):
    teacher = as_user("teacher")
    response = form_post(
        teacher,
        f"/course/{cast.course.id}/manage/add",
        method="autoenrol",
        name="Deep",
        enabled="on",
        rule=_deep_rule(5000),
    )
    assert response.status_code == 400
    assert "at most 100 are accepted" in response.get_data(as_text=True)


# --- field lengths and line breaks -------------------------------------------------------------


def test_an_over_long_field_is_a_rejected_row_in_the_user_import(
    any_db, tmp_path, sec_runtime, cast
):
    """On PostgreSQL a 101-character name used to abort the whole import (exit 70)."""
    csv = tmp_path / "users.csv"
    csv.write_text(
        "username,email,firstname,lastname\n"
        "ann,ann@x.org,Ann,Lee\n"
        f"long,long@x.org,{'N' * 101},Lee\n"
        f"huge,huge@x.org,Huge,{'L' * 100_000}\n"
        "eve,eve@x.org,Eve,Roe\n"
    )
    result = _shell(any_db, tmp_path, "user", "import", str(csv))
    assert result.returncode == 2, result.stderr
    assert (
        "users.csv:3: column firstname: 101 characters; at most 100 are accepted" in result.stderr
    )
    assert "users.csv:4: column lastname: 100000 characters; at most 100 are accepted" in (
        result.stderr
    )
    assert len(result.stderr) < 2000  # the 100,000 characters are not echoed
    with sec_runtime.site() as site:
        names = set(site.session.scalars(select(User.username)))
    assert {"ann", "eve"} <= names and not {"long", "huge"} & names

    strict = _shell(any_db, tmp_path, "user", "import", "--strict", str(csv))
    assert strict.returncode != 0
    _clean(strict.stdout)


def test_strict_refuses_the_whole_file_for_one_over_long_field(any_db, tmp_path, sec_runtime, cast):
    csv = tmp_path / "users.csv"
    csv.write_text(
        f"username,email,firstname,lastname\nzoe,zoe@x.org,Zoe,Ray\nlong,l@x.org,{'N' * 101},Lee\n"
    )
    result = _shell(any_db, tmp_path, "user", "import", "--strict", str(csv))
    assert result.returncode != 0
    assert "users.csv:3: column firstname: 101 characters" in result.stderr
    with sec_runtime.site() as site:
        assert site.session.scalar(select(User.id).where(User.username == "zoe")) is None


def test_over_long_fields_are_rejected_rows_in_course_and_cohort_imports(
    any_db, tmp_path, sec_runtime, cast
):
    courses = tmp_path / "courses.csv"
    courses.write_text(
        "shortname,fullname,category\n"
        "OK1,Fine,Sciences\n"
        f"LONG1,{'F' * 256},Sciences\n"
        f"LONG2,Fine,{'C' * 256}\n"
    )
    result = _shell(any_db, tmp_path, "course", "import", str(courses))
    assert result.returncode == 2, result.stderr
    assert "courses.csv:3: column fullname: 256 characters; at most 255 are accepted" in (
        result.stderr
    )
    assert "courses.csv:4: column category: a category name of: 256 characters" in result.stderr
    cohorts = tmp_path / "cohorts.csv"
    cohorts.write_text(f"idnumber,name\nc1,Fine\nc2,{'N' * 255}\n")
    result = _shell(any_db, tmp_path, "cohort", "import", str(cohorts))
    assert result.returncode == 2, result.stderr
    assert "cohorts.csv:3: column name: 255 characters; at most 254 are accepted" in result.stderr
    with sec_runtime.site() as site:
        shortnames = set(site.session.scalars(select(Course.shortname)))
    assert "OK1" in shortnames and not {"LONG1", "LONG2"} & shortnames


def test_an_over_long_field_is_a_short_422_field_error_on_the_api(api, sec_runtime):
    response = api("PATCH", "/users/bob", json={"firstname": "N" * 10_000_000})
    assert response.status_code == 422
    assert response.get_json()["errors"]["json"]["firstname"] == [
        "10000000 characters; at most 100 are accepted"
    ]
    assert len(response.get_data()) < 1000
    with sec_runtime.site() as site:
        assert site.session.scalar(select(User.firstname).where(User.username == "bob")) == "Bob"


def test_an_over_long_field_is_a_form_error_on_the_web(as_user, form_post, cast, sec_runtime):
    admin = as_user("admin")
    form_post(
        admin,
        f"/admin/users/{cast.bob.id}",
        action="profile",
        email="bob@x.org",
        firstname="N" * 101,
        lastname="Martin",
    )
    page = admin.get(f"/admin/users/{cast.bob.id}").get_data(as_text=True)
    assert "column firstname: 101 characters; at most 100 are accepted" in page
    with sec_runtime.site() as site:
        assert site.session.scalar(select(User.firstname).where(User.username == "bob")) == "Bob"


@pytest.mark.parametrize("email", ["bob@x.org\r\nBcc: all@x.org", "bob@x.org\nX: y", "b\r@x.org"])
def test_an_email_with_a_line_break_is_refused_by_the_api(api, email):
    response = api("PATCH", "/users/bob", json={"email": email})
    assert response.status_code == 422
    assert "line break" in response.get_json()["errors"]["json"]["email"][0]


def test_an_email_with_a_line_break_is_refused_by_the_shell_and_the_import(
    any_db, tmp_path, sec_runtime, cast
):
    result = _shell(any_db, tmp_path, "user", "set", "bob", "email=bob@x.org\r\nBcc: all@x.org")
    assert result.returncode != 0 and "line break" in result.stderr
    csv = tmp_path / "users.csv"
    csv.write_bytes(b'username,email,firstname,lastname\nmia,"mia@x.org\r\nBcc: a@x.org",Mia,Lo\n')
    result = _shell(any_db, tmp_path, "user", "import", str(csv))
    assert "users.csv:" in result.stderr
    assert "column email: contains a line break; give one address on one line" in result.stderr
    with sec_runtime.site() as site:
        emails = list(site.session.scalars(select(User.email)))
    assert not any("\r" in e or "\n" in e for e in emails)


@pytest.mark.parametrize("resource", ["/users", "/courses", "/cohorts", "/log"])
def test_a_huge_page_number_on_the_api_is_an_empty_page(api, resource):
    response = api("GET", f"{resource}?page={HUGE}")
    assert response.status_code == 200 and response.get_json() == []
