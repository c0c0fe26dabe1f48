"""Fixtures for the attacks of ``tests/security``: a site on each database backend (SQLite, and
PostgreSQL when the suite has a server) with one person per audience, the web app on it, clients
logged in through the real login form, and an API client with a write token.

The attacks through web pages walk the web tests' small site (``web_world``: ``world``, ``app``,
``client_as``, ``csrf``, ``post``, ``login``), here on every backend (``web_runtime``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import pytest
from enrolkit import people
from enrolkit.api import tokens
from enrolkit.enrolments import enrol_manually
from enrolkit.testing import SiteFactory
from enrolkit.web import create_app
from web_world import (  # noqa: F401  (the shared web site's fixtures)
    PASSWORD,
    app,
    client_as,
    csrf,
    csrf_token,
    drop,
    log_in,
    login,
    post,
    world,
)


@dataclass
class People:
    """Who the attacks are made as, and on."""

    admin: object
    teacher: object  # editing teacher of MATH101
    assistant: object  # non-editing teacher of MATH101
    student: object  # student of MATH101
    bob: object  # in no course
    course: object


@cache
def _password_hash() -> str:
    return people.hash_password(PASSWORD)


@pytest.fixture
def sec_runtime(make_runtime, any_db, tmp_path, monkeypatch):
    """Every installed plugin, on each backend, with a home of its own (drop folder, keys)."""
    monkeypatch.setenv("ENROLKIT_HOME", str(tmp_path / "home"))
    return make_runtime(url=any_db, entry_points=True)


@pytest.fixture
def web_runtime(make_runtime, any_db, tmp_path, monkeypatch):
    """The shared web site's database: every installed plugin, on each backend."""
    monkeypatch.setenv("ENROLKIT_HOME", str(tmp_path / "home"))
    return make_runtime(url=any_db, entry_points=True)


@pytest.fixture
def cast(sec_runtime) -> People:
    with sec_runtime.site() as site, site.atomic():
        f = SiteFactory(site)
        admin = f.user("admin", siteadmin=True)
        teacher = f.user("teacher", firstname="Claire", lastname="Martin")
        assistant = f.user("assistant", firstname="Paul", lastname="Aide")
        student = f.user("student", firstname="Jean", lastname="Dupont")
        bob = f.user("bob", firstname="Bob", lastname="Martin")
        for user in (admin, teacher, assistant, student, bob):
            user.password_hash = _password_hash()
        course = f.course("MATH101", category="Sciences", fullname="Maths")
        enrol_manually(site, teacher, course, role=f.role("editingteacher"))
        enrol_manually(site, assistant, course, role=f.role("teacher"))
        enrol_manually(site, student, course)
    return People(admin, teacher, assistant, student, bob, course)


@pytest.fixture
def sec_app(sec_runtime, cast):
    return create_app({"TESTING": True}, runtime=sec_runtime)


@pytest.fixture
def as_user(sec_app):
    """``as_user("teacher")``: a test client logged in as that user."""

    def make(username: str):
        client = sec_app.test_client()
        response = log_in(client, username)
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return make


@pytest.fixture
def form_post():
    """``form_post(client, url, **fields)``: a form post with this session's CSRF token."""

    def send(client, url: str, **fields):
        fields.setdefault("csrf_token", csrf_token(client))
        return client.post(url, data=fields)

    return send


@pytest.fixture
def api(sec_app, sec_runtime):
    """``api(method, path, **kwargs)``: a request with a write token."""
    with sec_runtime.site() as site:
        secret = tokens.create(site, "attacker", tokens.WRITE)
    client = sec_app.test_client()

    def call(method: str, path: str, **kwargs):
        headers = {"Authorization": f"Bearer {secret}", **kwargs.pop("headers", {})}
        return client.open(f"/api/v1{path}", method=method, headers=headers, **kwargs)

    return call
