"""How fast the engine applies a 100,000-user desired state, against the raw write of the same rows.

    .venv/bin/python benchmarks/bench_engine.py [--url URL] [--users N]

Without ``--url`` it runs on a new SQLite file in a temporary folder. With a PostgreSQL URL it
creates a new database on that server for the run and drops it afterwards.

What is compared, in one run and one database:

(a) ``engine``: one plan whose desired state is a SQL selection of every user with the student
    role, applied to one instance of an in-script method: the diff, the writes (user_enrolments
    and role_assignments rows), one log row per change (2 per user), the change hooks, the commit.
(b) ``raw``: one ``executemany`` INSERT of the same user_enrolments rows and of the same
    role_assignments rows into copies of those two tables (same columns, keys, indexes and
    foreign keys), with the parameter lists built before the clock starts, then the commit.
    No diff, no log.
(c) ``no-op``: the same plan applied again (nothing to change).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from pathlib import Path

import enrolkit
from enrolkit.engine import Plan
from enrolkit.models import ACTIVE, COURSE, Base, Course, EnrolInstance, Role, User
from enrolkit.plugins import Plugins
from enrolkit.runtime import Runtime
from sqlalchemy import MetaData, create_engine, insert, literal, null, select, text

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
    parser.add_argument("--url", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--users", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url, cleanup = _database(args.url, Path(folder))
        try:
            run(url, args.users)
        finally:
            cleanup()


def _database(url: str | None, folder: Path):
    if not url:
        return f"sqlite:///{folder / 'bench.db'}", lambda: None
    if not url.startswith("postgresql"):
        return url, lambda: None
    name = f"ek_bench_{uuid.uuid4().hex[:8]}"
    server = url.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.rsplit("/", 1)[0] + "/" + name, drop


def run(url: str, count: int) -> None:
    runtime = Runtime(url, Plugins(entry_points=False, extra=(sys.modules[__name__],)))
    Base.metadata.create_all(runtime.db)
    runtime.bootstrap()
    raw_enrolments, raw_roles = _raw_tables(runtime.db)
    with runtime.site(origin="cron") as site:
        instance_id, role_id, course_id = _setup(site, count)
        user_ids = list(site.session.scalars(select(User.id).order_by(User.id)))
        desired = select(
            User.id.label("user_id"),
            literal(role_id).label("role_id"),
            literal(0).label("timestart"),
            literal(0).label("timeend"),
            literal(ACTIVE).label("status"),
            null().label("group_id"),
        )
        plan = Plan(instance_id, reason="benchmark sync", desired=desired)

        enrolment_rows = [
            dict(instance_id=instance_id, user_id=uid, status=ACTIVE, timestart=0, timeend=0,
                 timecreated=NOW, timemodified=NOW)
            for uid in user_ids
        ]  # fmt: skip
        role_rows = [
            dict(role_id=role_id, user_id=uid, contextlevel=COURSE, instanceid=course_id,
                 component="enrol_bench", itemid=instance_id, timemodified=NOW)
            for uid in user_ids
        ]  # fmt: skip
        started = time.perf_counter()
        with site.atomic():
            site.session.execute(insert(raw_enrolments), enrolment_rows)
            site.session.execute(insert(raw_roles), role_rows)
        raw = time.perf_counter() - started

        started = time.perf_counter()
        outcome = site.engine.apply(plan)
        engine = time.perf_counter() - started
        assert len(outcome.enrolled) == count and outcome.roles_added == count, outcome.counts()

        started = time.perf_counter()
        again = site.engine.apply(plan)
        noop = time.perf_counter() - started
        assert not again.changed, again.counts()

    runtime.dispose()
    backend = url.split(":", 1)[0]
    print(f"backend: {backend}, users: {count:,}")
    print(f"(b) raw executemany, {count:,} enrolments + {count:,} roles: {raw:7.2f} s")
    print(f"(a) engine desired-state apply (+ {2 * count:,} log rows):  {engine:7.2f} s")
    print(f"    ratio engine/raw: {engine / raw:.2f}x (aim: at most 3x)")
    print(f"(c) engine no-op re-sync: {noop:7.2f} s (aim: under 1 s)")


def _setup(site, count: int) -> tuple[int, int, int]:
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
    return instance.id, role_id, course.id


def _raw_tables(db):
    """Copies of user_enrolments and role_assignments: same columns, keys, indexes and foreign
    keys (to the real users, roles and instances), under other names."""
    metadata = MetaData()
    for name in ("users", "roles", "enrol_instances", "courses"):
        Base.metadata.tables[name].to_metadata(metadata)
    copies = []
    for name in ("user_enrolments", "role_assignments"):
        copy = Base.metadata.tables[name].to_metadata(metadata, name=f"raw_{name}")
        for number, item in enumerate((*copy.indexes, *copy.constraints)):
            if item.name:
                item.name = f"{copy.name}_{number}"
        copies.append(copy)
    metadata.create_all(db, tables=copies)
    return copies


if __name__ == "__main__":
    main()
