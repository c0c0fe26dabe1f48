"""The small web site the web and security tests share: one person per audience (admin, two
teachers, a student), two courses, a cohort and a category; the app on it; clients logged in
through the real login form (CSRF token included).

A module with a name of its own, imported by ``tests/web/conftest.py`` and
``tests/security/conftest.py`` (``tests/`` is on ``sys.path`` through ``tests/conftest.py``): each
folder defines ``web_runtime``, the database the fixtures build on (SQLite for the web tests,
every backend for the attacks).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

import pytest
from enrolkit import people
from enrolkit.enrolments import enrol_manually
from enrolkit.models import User
from enrolkit.web import create_app

PASSWORD = "correct-horse-battery"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class World:
    """The people and things every web test may use."""

    admin: User
    teacher: User
    other_teacher: User
    student: User
    course: object
    other_course: object
    cohort: object
    category: object


@cache
def password_hash() -> str:
    """Hashed once per run: PBKDF2 is slow on purpose, and every test builds a world."""
    return people.hash_password(PASSWORD)


def build_world(site) -> World:
    with site.atomic():
        admin = site.user("admin", siteadmin=True, firstname="Ada", lastname="Admin")
        teacher = site.user("teacher", firstname="Claire", lastname="Martin")
        other_teacher = site.user("other", firstname="Luc", lastname="Dubois")
        student = site.user("student", firstname="Jean", lastname="Dupont", department="IT")
        for user in (admin, teacher, other_teacher, student):
            user.password_hash = password_hash()
        course = site.course("MATH101", category="Sciences / Mathematics", fullname="Maths")
        other_course = site.course("PHYS101", category="Sciences / Physics", fullname="Physics")
        cohort = site.cohort("promo", members=[student], category="Sciences")
        category = site.category("Sciences")
        editing = site.role("editingteacher")
        enrol_manually(site.site, teacher, course, role=editing)
        enrol_manually(site.site, other_teacher, other_course, role=editing)
        enrol_manually(site.site, student, course)
    return World(admin, teacher, other_teacher, student, course, other_course, cohort, category)


@pytest.fixture
def world(web_runtime) -> World:
    with web_runtime.site() as site:
        from enrolkit.testing import SiteFactory

        return build_world(SiteFactory(site))


@pytest.fixture
def app(web_runtime, world):
    return create_app({"TESTING": True}, runtime=web_runtime)


def token_of(html: str) -> str:
    found = _TOKEN.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def csrf_token(client) -> str:
    """A valid token for this client's session, read from a page as a browser would."""
    response = client.get("/login")
    if response.status_code == 302:
        response = client.get("/")
    return token_of(response.get_data(as_text=True))


def log_in(client, username: str, password: str = PASSWORD):
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_token(client)},
    )


@pytest.fixture
def csrf():
    """``csrf(client)``: a valid CSRF token for that client's session."""
    return csrf_token


@pytest.fixture
def hashed_password() -> str:
    """The hash of ``PASSWORD``, for users a test makes itself."""
    return password_hash()


@pytest.fixture
def login():
    """``login(client, username, password=PASSWORD)``: post the login form."""
    return log_in


@pytest.fixture
def client_as(app):
    """``client_as("teacher")``: a test client logged in as that user (None: anonymous)."""

    def make(username: str | None):
        client = app.test_client()
        if username is not None:
            response = log_in(client, username)
            assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return make


@pytest.fixture
def post(app):
    """``post(client, url, **fields)``: a form post with this session's CSRF token."""

    def send(client, url: str, follow: bool = False, **fields):
        fields.setdefault("csrf_token", csrf_token(client))
        return client.post(url, data=fields, follow_redirects=follow)

    return send


@pytest.fixture
def drop(web_runtime, world, tmp_path, monkeypatch):
    """Flat files on, with a drop folder the operator allows (``ENROLKIT_FLATFILE_ROOTS``) and
    no mail to the admins; the folder."""
    folder = tmp_path / "drop"
    monkeypatch.setenv("ENROLKIT_FLATFILE_ROOTS", str(tmp_path))
    with web_runtime.site() as site, site.atomic():
        site.set_method_enabled("flatfile", True)
        site.set_method_settings("flatfile", {"folder": str(folder), "mail_admins": "false"})
    return folder
