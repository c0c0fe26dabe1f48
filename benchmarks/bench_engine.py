"""How fast the engine applies a 100,000-user desired state, against the raw write of the same rows.

    .venv/bin/python benchmarks/bench_engine.py [--url URL] [--users N] [--quick]

It runs on a new SQLite file and, when ENROLKIT_TEST_POSTGRES_URL names a server, on a new
database of that server (dropped afterwards); ``--url`` runs on that database server only.
``--quick``: 5,000 users.

What is compared, in one run and one database:

(a) ``engine``: one plan whose desired state is a SQL selection of every user with the student
    role, applied to one instance of an in-script method: the diff, the writes (user_enrolments
    and role_assignments rows), one log row per change (2 per user), the change hooks, the commit.
(b) the baselines of ``_support.py``, the same rows written again into same-shaped copies:
    ``raw`` (executemany of the enrolments and role assignments, no log) and the set-based limit
    (one INSERT ... SELECT per table, the log rows included).
(c) ``no-op``: the same plan applied again (nothing to change).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import enrolkit
from _results import record
from _support import Baselines, backend, fresh_database, servers
from enrolkit.engine import Plan
from enrolkit.models import ACTIVE, Base, Course, EnrolInstance, Role, User
from enrolkit.plugins import Plugins
from enrolkit.runtime import Runtime
from sqlalchemy import insert, literal, null, select

NOW = 1_790_000_000


class BenchMethod(enrolkit.EnrolMethod):
    """A source-synced method with no settings, standing in for cohort sync."""

    name = "bench"
    title = "Benchmark source"


@enrolkit.hookimpl
def register_methods(register):
    register(BenchMethod())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="database URL (default: SQLite, and PostgreSQL if set)")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="5,000 users")
    args = parser.parse_args()
    users = 5_000 if args.quick else args.users
    for server in servers(args.url):
        with tempfile.TemporaryDirectory() as folder, fresh_database(server, Path(folder)) as url:
            run(url, users)


def run(url: str, count: int) -> None:
    runtime = Runtime(url, Plugins(entry_points=False, extra=(sys.modules[__name__],)))
    Base.metadata.create_all(runtime.db)
    runtime.bootstrap()
    baselines = Baselines(runtime.db)
    with runtime.site(origin="cron") as site:
        instance_id, role_id = _setup(site, count)
        desired = select(
            User.id.label("user_id"),
            literal(role_id).label("role_id"),
            literal(0).label("timestart"),
            literal(0).label("timeend"),
            literal(ACTIVE).label("status"),
            null().label("group_id"),
        )
        plan = Plan(instance_id, reason="benchmark sync", desired=desired)

        mark = baselines.mark()
        started = time.perf_counter()
        outcome = site.engine.apply(plan)
        engine = time.perf_counter() - started
        assert len(outcome.enrolled) == count and outcome.roles_added == count, outcome.counts()
        site.session.commit()
        base = baselines.measure(mark)

        started = time.perf_counter()
        again = site.engine.apply(plan)
        noop = time.perf_counter() - started
        assert not again.changed, again.counts()

    runtime.dispose()
    name = backend(url)
    print(f"backend: {name}, users: {count:,}")
    print(f"(a) engine desired-state apply (+ {2 * count:,} log rows):  {engine:7.2f} s")
    print(f"    {base.ratios(engine)}")
    print(f"(c) engine no-op re-sync: {noop:7.2f} s (aim: under 1 s)")
    figure = f"desired state of {count:,} users, one instance"
    record("bench_engine", figure, name, engine, "s")
    record("bench_engine", f"{figure}: vs raw", name, engine / base.raw, "x")
    record("bench_engine", f"{figure}: vs set-based", name, engine / base.set, "x")
    record("bench_engine", f"{figure}, no-op re-sync", name, noop, "s")


def _setup(site, count: int) -> tuple[int, int]:
    """``count`` users, one course, one instance of the bench method; no enrolments yet."""
    site.session.execute(
        insert(User),
        [
            dict(username=f"user{i}", email=f"user{i}@example.org", firstname="User",
                 lastname=str(i), timecreated=NOW)
            for i in range(1, count + 1)
        ],
    )  # fmt: skip
    course = Course(shortname="bench", fullname="Benchmark course", timecreated=NOW)
    site.session.add(course)
    site.session.flush()
    role_id = site.session.scalar(select(Role.id).where(Role.shortname == "student"))
    instance = EnrolInstance(course_id=course.id, method="bench", role_id=role_id, settings={})
    site.session.add(instance)
    site.session.commit()
    return instance.id, role_id


if __name__ == "__main__":
    main()
