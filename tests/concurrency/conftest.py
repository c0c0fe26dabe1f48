"""Fixtures of the concurrency tests: a cluster of two ``enrolkit serve`` nodes on one database,
started once per test session and backend (SQLite file, and PostgreSQL when the suite has a server);
each test makes its own users, courses and cohorts on it."""

from __future__ import annotations

import os

import pytest
from concurrency_nodes import Cluster, make_cluster
from enrolkit.testing import fresh_database_url

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("ENROLKIT_TEST_POSTGRES_URL") else [])


@pytest.fixture(scope="session", params=BACKENDS)
def cluster(request, tmp_path_factory) -> Cluster:
    base = tmp_path_factory.mktemp(f"cluster-{request.param}")
    made = make_cluster(fresh_database_url(request.param, base), base / "home")
    made.start(2)
    yield made
    made.stop()
    made.runtime.dispose()
