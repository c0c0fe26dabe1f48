"""Fixtures for the core's tests: a fresh database per test (SQLite, or PostgreSQL too when
``ENROLKIT_TEST_POSTGRES_URL`` is set), a site, and factories for site objects."""

from __future__ import annotations

import os

import pytest
from enrolkit.testing import SiteFactory, fresh_database_url

POSTGRES = os.environ.get("ENROLKIT_TEST_POSTGRES_URL")


def pytest_generate_tests(metafunc):
    # Tests that ask for ``any_db`` run on SQLite and, when available, PostgreSQL.
    if "any_db" in metafunc.fixturenames:
        backends = ["sqlite"] + (["postgresql"] if POSTGRES else [])
        metafunc.parametrize("any_db", backends, indirect=True)


@pytest.fixture
def any_db(request, tmp_path):
    return fresh_database_url(request.param, tmp_path)


@pytest.fixture
def db_site(any_db, make_runtime):
    """A site on each available database backend."""
    runtime = make_runtime(url=any_db)
    with runtime.site() as site:
        yield SiteFactory(site)
