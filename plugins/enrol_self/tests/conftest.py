"""The self-enrolment tests' site: only this plugin, on SQLite and (when configured)
PostgreSQL; every fixture of enrolkit.testing (``site``, ``cli``, ``client``, ``run_cron``,
``outbox``) runs on it."""

from __future__ import annotations

import enrol_self
import pytest
from enrolkit import people

PASSWORD = "correct-horse-battery"


@pytest.fixture
def enrolkit_plugins():
    """The core and this plugin only, whatever else is installed."""
    return (enrol_self,)


@pytest.fixture
def enrolkit_database_url(any_db):
    """Every fixture of enrolkit.testing on each database backend."""
    return any_db


@pytest.fixture
def course(site, clock):
    """C1 with two students and a teacher (who may log in), self enrolment enabled."""
    from enrolkit.enrolments import enrol_manually

    with site.atomic():
        site.set_method_enabled("self", True)
        course = site.course("C1", fullname="Biology 101")
        for name in ("ann", "bob", "teach"):
            site.user(name).password_hash = people.hash_password(PASSWORD)
        enrol_manually(site.site, site.session.scalar(_user("teach")), course,
                       role=site.role("editingteacher"))  # fmt: skip
    return course


def _user(name: str):
    from enrolkit.models import User
    from sqlalchemy import select

    return select(User).where(User.username == name)


@pytest.fixture
def user(site):
    """``user("ann")``: a user of the site by name."""
    return lambda name: site.session.scalar(_user(name))


@pytest.fixture
def log_in():
    """``log_in(client, "ann")``: log in through the real login form (CSRF token included)."""
    import re

    token = re.compile(r'name="csrf_token" value="([^"]+)"')

    def go(client, username: str):
        page = client.get("/login").get_data(as_text=True)
        response = client.post(
            "/login",
            data={"username": username, "password": PASSWORD, "csrf_token": token.search(page)[1]},
        )
        assert response.status_code == 302, response.get_data(as_text=True)
        return client

    return go
