"""How fast the source-following methods sync at scale, beside the raw write of the same rows.

    .venv/bin/python benchmarks/bench_sync.py [--url URL] [--members N] [--instances N]

Without ``--url`` it runs on a new SQLite file in a temporary folder; with a PostgreSQL URL it
creates a new database on that server for the run and drops it afterwards. Each figure is the
whole public operation, as the CLI runs it: settings checked, plan, diff, writes, one log row per
change, change hooks (the meta and category plugins are loaded and listening), commit.

(r) raw: one executemany INSERT of N user_enrolments rows and N role_assignments rows into copies
    of those tables (same columns, keys, indexes, foreign keys), parameters built beforehand.
(a) a cohort of N members added to a course (``instance add C cohort cohort=X``).
(b) the same cohort added to 10 more courses, one after the other.
(c) a meta link to a course of N users (the course of (a)): N enrolments and N roles mirrored.
(d) the hourly meta sync when nothing changed (the drift check over N mirrored users).
(f) one more member joins that cohort: enrolled in the 11 courses and, through the link, in
    the meta course.
(e) in a second database: 1,000 courses, each with a cohort instance (100 cohorts of 100):
    the first full sync (1,000 plans, 100,000 enrolments), then a full sync with nothing to do.

For scale: Moodle's cohort sync took 42-52 s for one 10,000-member cohort on this kind of
machine with PostgreSQL. Aims: (a) under 3 s on SQLite for 100,000 members; (e) no-op under 2 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import enrol_category
import enrol_cohort
import enrol_meta
from enrol_cohort.sync import full_sync as cohort_full_sync
from enrol_meta.sync import full_sync as meta_full_sync
from enrolkit.cohorts import add_members
from enrolkit.enrolments import add_instance
from enrolkit.models import (
    ACTIVE,
    COURSE,
    Base,
    Cohort,
    CohortMember,
    Course,
    EnrolInstance,
    Role,
    User,
    UserEnrolment,
)
from enrolkit.plugins import Plugins
from enrolkit.runtime import Runtime
from sqlalchemy import MetaData, create_engine, func, insert, select, text

NOW = 1_790_000_000
PLUGINS = (enrol_cohort, enrol_meta, enrol_category)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--instances", type=int, default=1_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        for phase, (name, run) in enumerate((("big", big_cohort), ("many", many_instances))):
            url, cleanup = _database(args.url, Path(folder), name)
            try:
                run(url, args.members if phase == 0 else args.instances)
            finally:
                cleanup()


def _database(url: str | None, folder: Path, name: str):
    if not url:
        return f"sqlite:///{folder / f'{name}.db'}", lambda: None
    if not url.startswith("postgresql"):
        return url, lambda: None
    database = f"ek_bench_{uuid.uuid4().hex[:8]}"
    server = url.replace("postgresql://", "postgresql+psycopg://", 1)
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{database}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{database}" WITH (FORCE)'))
        admin.dispose()

    return url.rsplit("/", 1)[0] + "/" + database, drop


def _runtime(url: str) -> Runtime:
    runtime = Runtime(url, Plugins(entry_points=False, extra=PLUGINS))
    Base.metadata.create_all(runtime.db)
    runtime.bootstrap()
    return runtime


def _users(site, count: int, prefix: str = "user") -> list[int]:
    site.session.execute(
        insert(User),
        [
            dict(username=f"{prefix}{i}", email=f"{prefix}{i}@example.org", firstname="User",
                 lastname=str(i), timecreated=NOW)
            for i in range(1, count + 1)
        ],
    )  # fmt: skip
    return list(site.session.scalars(select(User.id).order_by(User.id)))


def _timed(action):
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


def big_cohort(url: str, members: int) -> None:
    runtime = _runtime(url)
    raw_enrolments, raw_roles = _raw_tables(runtime.db)
    backend = url.split(":", 1)[0]
    with runtime.site() as site:
        user_ids = _users(site, members)
        cohort = Cohort(idnumber="everyone", name="Everyone")
        site.session.add(cohort)
        site.session.flush()
        site.session.execute(
            insert(CohortMember), [{"cohort_id": cohort.id, "user_id": uid} for uid in user_ids]
        )
        courses = [Course(shortname=f"C{i}", fullname=f"Course {i}") for i in range(12)]
        site.session.add_all(courses)
        site.session.flush()
        # The raw rows' instance: a stand-in beside the courses measured.
        stand_in = EnrolInstance(course_id=courses[0].id, method="bench", enabled=False)
        site.session.add(stand_in)
        site.session.flush()
        role_id = site.session.scalar(select(Role.id).where(Role.shortname == "student"))
        site.set_method_enabled("meta", True)
        site.session.commit()

        enrolment_rows = [
            dict(instance_id=stand_in.id, user_id=uid, status=ACTIVE, timestart=0, timeend=0,
                 timecreated=NOW, timemodified=NOW)
            for uid in user_ids
        ]  # fmt: skip
        role_rows = [
            dict(role_id=role_id, user_id=uid, contextlevel=COURSE, instanceid=courses[0].id,
                 component="enrol_bench", itemid=stand_in.id, timemodified=NOW)
            for uid in user_ids
        ]  # fmt: skip

        def raw():
            with site.atomic():
                site.session.execute(insert(raw_enrolments), enrolment_rows)
                site.session.execute(insert(raw_roles), role_rows)

        raw_s, _ = _timed(raw)

        def add(course, method, **settings):
            return add_instance(site, course, method, settings).outcome

        first_s, outcome = _timed(lambda: add(courses[0], "cohort", cohort="everyone"))
        assert len(outcome.enrolled) == members and outcome.roles_added == members
        more_s, outcomes = _timed(
            lambda: [add(course, "cohort", cohort="everyone") for course in courses[1:11]]
        )
        assert all(len(o.enrolled) == members for o in outcomes)
        meta_s, outcome = _timed(lambda: add(courses[11], "meta", source="C0"))
        assert len(outcome.enrolled) == members and outcome.roles_added == members
        noop_s, line = _timed(lambda: meta_full_sync(site))
        assert line == "1 instance(s) checked, 0 re-synced", line
        site.session.add(User(username="newcomer", timecreated=NOW))
        site.session.commit()
        newcomer = site.session.scalar(select(User).where(User.username == "newcomer"))
        join_s, _ = _timed(lambda: add_members(site, cohort, [newcomer]))
        enrolled = site.session.scalar(
            select(func.count())
            .select_from(UserEnrolment)
            .where(UserEnrolment.user_id == newcomer.id)
        )
        assert enrolled == 12, enrolled  # 11 cohort courses, and the meta link from C0
    runtime.dispose()

    print(f"backend: {backend}; cohort of {members:,} members")
    print(f"(r) raw executemany, {members:,} enrolments + {members:,} roles: {raw_s:7.2f} s")
    print(
        f"(a) cohort added to a course, {members:,} enrolled:         {first_s:7.2f} s"
        f"  ({first_s / raw_s:.2f}x raw; aim on SQLite: under 3 s)"
    )
    print(
        f"(b) then to 10 more courses:                            {more_s:7.2f} s"
        f"  ({more_s / 10:.2f} s per course, {more_s / 10 / raw_s:.2f}x raw)"
    )
    print(
        f"(c) meta link to a course of {members:,} users:            {meta_s:7.2f} s"
        f"  ({meta_s / raw_s:.2f}x raw)"
    )
    print(f"(d) hourly meta sync, nothing changed:                  {noop_s:7.2f} s")
    print(f"(f) one member joins the cohort (11 courses + 1 meta link follow): {join_s:7.2f} s")


def many_instances(url: str, instances: int) -> None:
    runtime = _runtime(url)
    cohorts, per_cohort = 100, 100
    with runtime.site(origin="cron") as site:
        user_ids = _users(site, cohorts * per_cohort)
        site.session.execute(
            insert(Cohort), [{"idnumber": f"k{i}", "name": f"Cohort {i}"} for i in range(cohorts)]
        )
        cohort_ids = list(site.session.scalars(select(Cohort.id).order_by(Cohort.id)))
        site.session.execute(
            insert(CohortMember),
            [
                {"cohort_id": cid, "user_id": user_ids[c * per_cohort + j]}
                for c, cid in enumerate(cohort_ids)
                for j in range(per_cohort)
            ],
        )
        site.session.execute(
            insert(Course),
            [{"shortname": f"M{i}", "fullname": f"Course {i}"} for i in range(instances)],
        )
        course_ids = list(site.session.scalars(select(Course.id).order_by(Course.id)))
        role_id = site.session.scalar(select(Role.id).where(Role.shortname == "student"))
        # Instances as `instance add` stores them; their first sync is the first full sync.
        site.session.execute(
            insert(EnrolInstance),
            [
                {"course_id": cid, "method": "cohort", "role_id": role_id, "enabled": True,
                 "settings": {"cohort": f"k{i % cohorts}", "group": "none"}}
                for i, cid in enumerate(course_ids)
            ],
        )  # fmt: skip
        site.session.commit()
        first_s, first = _timed(lambda: cohort_full_sync(site))
        total = site.session.scalar(text("SELECT COUNT(*) FROM user_enrolments"))
        noop_s, line = _timed(lambda: cohort_full_sync(site))
        assert line == f"{instances} instance(s) checked, 0 re-synced", line
        assert total == instances * per_cohort, total
        count = site.session.scalar(select(func.count()).select_from(EnrolInstance))
    runtime.dispose()
    print(
        f"(e) {count:,} cohort instances ({cohorts} cohorts of {per_cohort}), {total:,} enrolments:"
    )
    print(f"    first full sync: {first_s:7.2f} s  [{first}]")
    print(f"    no-op full sync: {noop_s:7.2f} s  (aim: under 2 s)")


def _raw_tables(db):
    """Copies of user_enrolments and role_assignments: same columns, keys, indexes and foreign
    keys, under other names."""
    metadata = MetaData()
    for name in ("users", "roles", "courses", "enrol_instances"):
        Base.metadata.tables[name].to_metadata(metadata)
    copies = []
    for name in ("user_enrolments", "role_assignments"):
        copy = Base.metadata.tables[name].to_metadata(metadata, name=f"raw_{name}")
        for number, item in enumerate((*copy.indexes, *copy.constraints)):
            if item.name:  # short: PostgreSQL cuts names at 63 characters
                item.name = f"raw_{name}_{number}"
        copies.append(copy)
    metadata.create_all(db, tables=copies)
    return copies


if __name__ == "__main__":
    main()
