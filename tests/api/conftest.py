"""Fixtures for the REST API tests: a small site with every installed plugin, tokens of each
scope made by the real token service, and a client that sends them."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from enrolkit.api import tokens
from enrolkit.enrolments import enrol_manually
from enrolkit.testing import SiteFactory
from enrolkit.web import create_app


@dataclass
class World:
    ann: object
    bob: object
    teacher: object
    maths: object
    physics: object
    cohort: object


@pytest.fixture
def api_runtime(make_runtime, any_db):
    """Every installed plugin, on SQLite (and PostgreSQL when the suite has a server)."""
    return make_runtime(url=any_db, entry_points=True)


@pytest.fixture
def world(api_runtime) -> World:
    with api_runtime.site() as site, site.atomic():
        f = SiteFactory(site)
        ann = f.user("ann", department="Sales")
        bob = f.user("bob", department="IT")
        teacher = f.user("teacher")
        maths = f.course("MATH101", category="Sciences / Mathematics", fullname="Maths")
        physics = f.course("PHYS101", category="Sciences / Physics", fullname="Physics")
        cohort = f.cohort("promo", members=[ann], category="Sciences")
        enrol_manually(site, teacher, maths, role=f.role("editingteacher"))
        enrol_manually(site, ann, maths)
    return World(ann, bob, teacher, maths, physics, cohort)


@pytest.fixture
def app(api_runtime, world):
    return create_app({"TESTING": True}, runtime=api_runtime)


@dataclass
class Tokens:
    write: str
    read: str


@pytest.fixture
def token(api_runtime) -> Tokens:
    with api_runtime.site() as site:
        return Tokens(
            write=tokens.create(site, "hr-system", tokens.WRITE),
            read=tokens.create(site, "dashboard", tokens.READ),
        )


class Api:
    """A test client that sends a bearer token (the write one unless told)."""

    def __init__(self, client, token: Tokens) -> None:
        self.client = client
        self.tokens = token

    def __call__(self, method: str, path: str, token: str | None = "write", **kwargs):
        headers = kwargs.pop("headers", {})
        if token is not None:
            headers["Authorization"] = f"Bearer {getattr(self.tokens, token, token)}"
        return self.client.open(f"/api/v1{path}", method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs):
        return self("GET", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self("POST", path, **kwargs)

    def patch(self, path: str, **kwargs):
        return self("PATCH", path, **kwargs)

    def put(self, path: str, **kwargs):
        return self("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs):
        return self("DELETE", path, **kwargs)

    @staticmethod
    def field_errors(response, location: str = "json") -> dict:
        """The per-field messages of a 422 answer."""
        assert response.status_code == 422, (response.status_code, response.get_json())
        body = response.get_json()
        assert body["code"] == 422 and body["message"]
        return body["errors"][location]


@pytest.fixture
def api(app, token) -> Api:
    return Api(app.test_client(), token)
