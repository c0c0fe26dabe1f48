"""How fast the source-following methods sync at scale, beside the raw write of the same rows.

    .venv/bin/python benchmarks/bench_sync.py [--url URL] [--members N] [--instances N] [--quick]

It runs on a new SQLite file and, when ENROLKIT_TEST_POSTGRES_URL names a server, on a new
database of that server (dropped afterwards); ``--url`` runs on that database server only.
``--quick``: 5,000 members, 50 instances. Each figure is the whole public operation, as the CLI
runs it: settings checked, plan, diff, writes, one log row per change, change hooks (the meta and
category plugins are loaded and listening), commit.

(a), (c) and (e) are set beside the baselines of ``_support.py``, the same rows written again
into same-shaped copies: ``raw`` (executemany of the enrolments and role assignments, no log)
and the set-based limit (one INSERT ... SELECT per table, the log rows included).
(a) a cohort of N members added to a course (``instance add C cohort cohort=X``).
(b) the same cohort added to 10 more courses, one after the other.
(c) a meta link to a course of N users (the course of (a)): N enrolments and N roles mirrored.
(d) the hourly meta sync when nothing changed (the drift check over N mirrored users).
(f) one more member joins that cohort: enrolled in the 11 courses and, through the link, in
    the meta course.
(e) in a second database: 1,000 courses, each with a cohort instance (100 cohorts of 100):
    the first full sync (1,000 plans, 100,000 enrolments), then a full sync with nothing to do.

For scale: Moodle's cohort sync took 42-52 s for one 10,000-member cohort on this kind of
machine with PostgreSQL. Aims (issue 15): (a) at most 2 s on SQLite, 4 s on PostgreSQL; (e) the
first full sync at most 3 s on SQLite, 5 s on PostgreSQL; (e) no-op under 2 s.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import enrol_category
import enrol_cohort
import enrol_meta
from _results import record
from _support import Baselines, backend, fresh_database, servers
from enrol_cohort.sync import full_sync as cohort_full_sync
from enrol_meta.sync import full_sync as meta_full_sync
from enrolkit.cohorts import add_members
from enrolkit.enrolments import add_instance
from enrolkit.models import (
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
from sqlalchemy import func, insert, select, text

NOW = 1_790_000_000
PLUGINS = (enrol_cohort, enrol_meta, enrol_category)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="database URL (default: SQLite, and PostgreSQL if set)")
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--instances", type=int, default=1_000)
    parser.add_argument("--quick", action="store_true", help="5,000 members, 50 instances")
    args = parser.parse_args()
    members, instances = (5_000, 50) if args.quick else (args.members, args.instances)
    for server in servers(args.url):
        with tempfile.TemporaryDirectory() as folder:
            with fresh_database(server, Path(folder), "big") as url:
                big_cohort(url, members)
            with fresh_database(server, Path(folder), "many") as url:
                many_instances(url, instances)


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
    baselines = Baselines(runtime.db)
    name = backend(url)
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
        site.set_method_enabled("meta", True)
        site.session.commit()

        def add(course, method, **settings):
            return add_instance(site, course, method, settings).outcome

        def measured(action):
            mark = baselines.mark()
            seconds, outcome = _timed(action)
            site.session.commit()
            return seconds, outcome, baselines.measure(mark)

        first_s, outcome, first_base = measured(
            lambda: add(courses[0], "cohort", cohort="everyone")
        )
        assert len(outcome.enrolled) == members and outcome.roles_added == members
        more_s, outcomes = _timed(
            lambda: [add(course, "cohort", cohort="everyone") for course in courses[1:11]]
        )
        assert all(len(o.enrolled) == members for o in outcomes)
        meta_s, outcome, meta_base = measured(lambda: add(courses[11], "meta", source="C0"))
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

    print(f"backend: {name}; cohort of {members:,} members")
    print(f"(a) cohort added to a course, {members:,} enrolled:         {first_s:7.2f} s")
    print(f"    {first_base.ratios(first_s)}")
    print(
        f"(b) then to 10 more courses:                            {more_s:7.2f} s"
        f"  ({more_s / 10:.2f} s per course)"
    )
    print(f"(c) meta link to a course of {members:,} users:            {meta_s:7.2f} s")
    print(f"    {meta_base.ratios(meta_s)}")
    print(f"(d) hourly meta sync, nothing changed:                  {noop_s:7.2f} s")
    print(f"(f) one member joins the cohort (11 courses + 1 meta link follow): {join_s:7.2f} s")
    cohort_figure = f"cohort of {members:,} added to a course"
    _record_with_baselines(cohort_figure, name, first_s, first_base)
    more_figure = f"cohort of {members:,} added to 10 more courses, per course"
    record("bench_sync", more_figure, name, more_s / 10, "s")
    _record_with_baselines(f"meta link to a course of {members:,}", name, meta_s, meta_base)
    record("bench_sync", f"hourly meta sync of {members:,}, nothing changed", name, noop_s, "s")
    record("bench_sync", "one member joins a cohort of 11 courses + 1 meta link", name, join_s, "s")


def _record_with_baselines(figure: str, name: str, seconds: float, base) -> None:
    record("bench_sync", figure, name, seconds, "s")
    record("bench_sync", f"{figure}: vs raw", name, seconds / base.raw, "x")
    record("bench_sync", f"{figure}: vs set-based", name, seconds / base.set, "x")


def many_instances(url: str, instances: int) -> None:
    runtime = _runtime(url)
    baselines = Baselines(runtime.db)
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
        mark = baselines.mark()
        first_s, first = _timed(lambda: cohort_full_sync(site))
        total = site.session.scalar(text("SELECT COUNT(*) FROM user_enrolments"))
        site.session.commit()
        base = baselines.measure(mark)
        noop_s, line = _timed(lambda: cohort_full_sync(site))
        assert line == f"{instances} instance(s) checked, 0 re-synced", line
        assert total == instances * per_cohort, total
        count = site.session.scalar(select(func.count()).select_from(EnrolInstance))
    runtime.dispose()
    print(
        f"(e) {count:,} cohort instances ({cohorts} cohorts of {per_cohort}), {total:,} enrolments:"
    )
    print(f"    first full sync: {first_s:7.2f} s  [{first}]")
    print(f"    {base.ratios(first_s)}")
    print(f"    no-op full sync: {noop_s:7.2f} s  (aim: under 2 s)")
    name = backend(url)
    figure = f"first full sync, {count:,} instances / {total:,} enrolments"
    _record_with_baselines(figure, name, first_s, base)
    record("bench_sync", f"no-op full sync, {count:,} instances", name, noop_s, "s")


if __name__ == "__main__":
    main()
