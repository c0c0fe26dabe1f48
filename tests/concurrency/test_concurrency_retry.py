"""The bounded retry of :mod:`enrolkit.locks`: a real deadlock between two writers (each holding
one instance and waiting for the other's, which nested plans can do) ends one transaction;
PostgreSQL picks the victim, ``retrying`` runs its work again, and both writers finish."""

from __future__ import annotations

import os
import threading

import pytest
from enrolkit.locks import lock_instances, retrying
from enrolkit.testing import fresh_database_url


@pytest.fixture
def runtime(make_runtime, tmp_path):
    if not os.environ.get("ENROLKIT_TEST_POSTGRES_URL"):
        pytest.skip("needs PostgreSQL (ENROLKIT_TEST_POSTGRES_URL): SQLite has one writer")
    return make_runtime(url=fresh_database_url("postgresql", tmp_path))


def test_a_deadlocked_writer_is_run_again_and_both_finish(runtime):
    both_hold_one = threading.Barrier(2)
    attempts: list[str] = []
    errors: list[BaseException] = []

    def writer(name: str, first: int, then: int) -> None:
        def work() -> None:
            with site.atomic():
                attempts.append(name)
                lock_instances(site.session, [first])
                if attempts.count(name) == 1:  # the first attempt meets the other writer
                    both_hold_one.wait(timeout=30)
                lock_instances(site.session, [then])

        try:
            with runtime.site() as site:
                retrying(site, work)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=writer, args=("a", 1, 2)),
        threading.Thread(target=writer, args=("b", 2, 1)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(attempts) in (["a", "a", "b"], ["a", "b", "b"])  # one victim, run twice


def test_work_that_keeps_failing_gives_up_after_the_bounded_attempts(runtime):
    """Only deadlocks and serialisation failures are retried, and only a few times."""
    from psycopg.errors import DeadlockDetected
    from sqlalchemy.exc import OperationalError

    calls: list[int] = []

    def work() -> None:
        calls.append(1)
        raise OperationalError("SELECT 1", {}, DeadlockDetected("deadlock detected"))

    with runtime.site() as site, pytest.raises(OperationalError):
        retrying(site, work)
    assert len(calls) == 4

    calls.clear()

    def broken() -> None:
        calls.append(1)
        raise ValueError("a bug is not retried")

    with runtime.site() as site, pytest.raises(ValueError):
        retrying(site, broken)
    assert len(calls) == 1
