"""Issue 18: what a caller gets when the database stays busy or fails: the API answers 503 with
Retry-After (the CLI exits 75), never the database's own words; the words go to the server log
under a request id that the answer carries. And ``/healthz`` for the load balancer.

The busy database is real: another connection holds the enrolment instance's lock (the one
every plan takes) and the node's connections give up waiting after 0.3 s (PostgreSQL's
``lock_timeout``, set in the database URL as an operator would)."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from enrolkit import hookimpl, people
from enrolkit.api import tokens
from enrolkit.locks import INSTANCE_LOCKS
from enrolkit.models import Course, User, UserEnrolment
from enrolkit.testing import SiteFactory, fresh_database_url
from enrolkit.web import create_app
from sqlalchemy import create_engine, func, select

ENROLKIT = str(Path(sys.executable).with_name("enrolkit"))
LOCK_TIMEOUT = "?options=-c%20lock_timeout%3D300"


@pytest.fixture
def pg_url(tmp_path) -> str:
    if not os.environ.get("ENROLKIT_TEST_POSTGRES_URL"):
        pytest.skip("needs PostgreSQL (ENROLKIT_TEST_POSTGRES_URL): the lock is an advisory lock")
    return fresh_database_url("postgresql", tmp_path)


@pytest.fixture
def busy_site(pg_url, make_runtime):
    """A site whose connections wait at most 0.3 s for a lock; ann may confirm her enrolment
    in C1 (auto-enrol, confirm mode). Yields the runtime, a write token and the instance id."""
    runtime = make_runtime(url=pg_url + LOCK_TIMEOUT, entry_points=True)
    with runtime.site() as site, site.atomic():
        f = SiteFactory(site)
        f.user("ann")
        instance = f.instance(f.course("C1"), "autoenrol", mode="confirm")
        secret = tokens.create(site, "lms", tokens.WRITE)
        instance_id = instance.id
    return runtime, secret, instance_id


class HeldLock:
    """Another node in the middle of a plan for the instance: its transaction holds the lock."""

    def __init__(self, url: str, instance_id: int) -> None:
        self.engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        self.connection = self.engine.connect()
        self.connection.exec_driver_sql(
            "SELECT pg_advisory_xact_lock(%(space)s, %(id)s)",
            {"space": INSTANCE_LOCKS, "id": instance_id},
        )

    def release(self) -> None:
        self.connection.rollback()
        self.connection.close()
        self.engine.dispose()


def test_a_busy_instance_answers_503_with_retry_after_and_a_request_id(busy_site, pg_url, caplog):
    runtime, secret, instance_id = busy_site
    client = create_app({"TESTING": True}, runtime=runtime).test_client()
    held = HeldLock(pg_url, instance_id)
    try:
        with caplog.at_level(logging.ERROR):
            answer = client.post(
                "/api/v1/events/enrol-me",
                json={"username": "ann", "course": "C1"},
                headers={"Authorization": f"Bearer {secret}", "X-Request-Id": "lb-4711"},
            )
    finally:
        held.release()

    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "1"
    assert answer.headers["X-Request-Id"] == "lb-4711"
    assert answer.json == {
        "code": 503,
        "status": "Service Unavailable",
        "message": "the database is busy; try again in a moment",
        "request_id": "lb-4711",
    }
    [entry] = [r for r in caplog.records if "lb-4711" in r.getMessage()]
    assert "lock timeout" in str(entry.exc_info[1])  # the database's words: in the log only
    with runtime.site() as site:
        assert site.session.scalar(select(func.count()).select_from(UserEnrolment)) == 0
    # Once the other writer is done, the same request succeeds.
    again = client.post(
        "/api/v1/events/enrol-me",
        json={"username": "ann", "course": "C1"},
        headers={"Authorization": f"Bearer {secret}"},
    )
    assert again.status_code == 200 and again.json["decision"] == "granted"
    assert len(again.headers["X-Request-Id"]) == 32  # made up when the caller sent none


def test_a_busy_instance_makes_the_cli_exit_75(busy_site, pg_url, tmp_path):
    _, _, instance_id = busy_site
    held = HeldLock(pg_url, instance_id)
    try:
        result = subprocess.run(
            [ENROLKIT, "course", "enrol-me", "ann", "C1"],
            env={
                **os.environ,
                "ENROLKIT_DATABASE_URL": pg_url + LOCK_TIMEOUT,
                "ENROLKIT_HOME": str(tmp_path / "home"),
            },
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        held.release()
    assert result.returncode == 75, result.stderr
    assert result.stderr.startswith("enrolkit: error: the database is busy")
    assert result.stderr.endswith("try again\n") and result.stderr.count("\n") == 1


# --- /healthz -------------------------------------------------------------------------------------


def test_healthz_answers_200_without_a_login(make_runtime, any_db):
    client = create_app({"TESTING": True}, runtime=make_runtime(url=any_db)).test_client()
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json == {"status": "ok"}
    assert answer.headers["Cache-Control"] == "no-store"


def test_healthz_answers_503_without_details_when_the_database_is_unusable(
    make_runtime, tmp_path, caplog
):
    runtime = make_runtime()
    app = create_app({"TESTING": True}, runtime=runtime)
    with runtime.db.begin() as connection:  # the schema is gone: nothing can be served
        connection.exec_driver_sql("DROP TABLE user_enrolments")
        connection.exec_driver_sql("DROP TABLE enrol_instances")
    with caplog.at_level(logging.ERROR):
        answer = app.test_client().get("/healthz")
    assert answer.status_code == 503
    assert answer.json == {"status": "unavailable"}
    rid = answer.headers["X-Request-Id"]
    assert any(
        rid in r.getMessage() and "enrol_instances" in str(r.exc_info[1]) for r in caplog.records
    )


def test_a_busy_database_on_a_web_page_says_busy_and_names_the_request(busy_site, pg_url):
    runtime, _, instance_id = busy_site
    with runtime.site() as site, site.atomic():
        ann = site.session.scalar(select(User).where(User.username == "ann"))
        ann.password_hash = people.hash_password("correct-horse-battery")
        course_id = site.session.scalar(select(Course.id).where(Course.shortname == "C1"))
    client = create_app({"TESTING": True}, runtime=runtime).test_client()
    form = {"username": "ann", "password": "correct-horse-battery"}
    assert (
        client.post("/login", data={**form, "csrf_token": _csrf(client, "/login")}).status_code
        == 302
    )
    token = _csrf(client, f"/course/{course_id}")
    held = HeldLock(pg_url, instance_id)
    try:
        answer = client.post(f"/course/{course_id}/enrol", data={"csrf_token": token})
    finally:
        held.release()
    page = answer.get_data(as_text=True)
    assert answer.status_code == 503 and answer.headers["Retry-After"] == "1"
    assert "The site is busy. Try again in a moment." in page
    assert f"Request id: {answer.headers['X-Request-Id']}" in page
    assert "lock" not in page.lower() and "psycopg" not in page.lower()


def _csrf(client, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).get_data(as_text=True))
    assert found, f"{path} has no form"
    return found.group(1)


# --- a bug ----------------------------------------------------------------------------------------


class BrokenHook:
    @hookimpl
    def on_login(self, site, user):
        raise RuntimeError("secret internals of the failure")


def test_a_bug_answers_500_with_the_request_id_and_logs_it_under_that_id(make_runtime, caplog):
    runtime = make_runtime(plugins=(BrokenHook(),))
    with runtime.site() as site, site.atomic():
        SiteFactory(site).user("ann")
        secret = tokens.create(site, "lms", tokens.WRITE)
    app = create_app({"TESTING": True, "PROPAGATE_EXCEPTIONS": False}, runtime=runtime)
    with caplog.at_level(logging.ERROR):
        answer = app.test_client().post(
            "/api/v1/events/login",
            json={"username": "ann"},
            headers={"Authorization": f"Bearer {secret}"},
        )
    assert answer.status_code == 500
    rid = answer.headers["X-Request-Id"]
    assert answer.json["request_id"] == rid
    assert "secret internals" not in answer.get_data(as_text=True)
    assert any(rid in r.getMessage() for r in caplog.records)
    assert any("secret internals" in str(r.exc_info and r.exc_info[1]) for r in caplog.records)
