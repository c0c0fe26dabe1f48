"""How fast the completion method backfills 100,000 past completers, and what one completion costs.

    .venv/bin/python benchmarks/bench_completion.py [--url URL] [--users N] [--courses M] [--quick]

It runs on a new SQLite file and, when ENROLKIT_TEST_POSTGRES_URL names a server, on a new
database of that server (dropped afterwards); ``--url`` runs on that database server only.
``--quick``: 5,000 users, 500 courses, K = 20.

The site: N users, all of whom completed course A at some time in the past two years; M other
courses, each with a completion instance naming another course (so finding the instances that
wait for A is a lookup among M, not a scan); course B, empty.

(a) ``backfill``: ``enrolkit instance add B completion source=A welcome=off --backfill``, i.e.
    ``add_instance(..., backfill=True)``: the instance, the selection of the N completers not yet
    in B, one desired-state plan (N enrolments, N role assignments, 2N log rows), the commit.
    Aim: under 3 s on SQLite for N = 100,000. Beside it, the baselines of ``_support.py``: the
    same rows written again into same-shaped copies, ``raw`` (executemany of the enrolments and
    role assignments, no log) and the set-based limit (INSERT ... SELECT, the log rows included).
(b) ``welcome``: queueing the welcome message (render + outbox row) for 2,000 of them, per user;
    what a backfill with ``welcome=on`` adds.
(c) ``on_completion``: K new users complete A one at a time, B's instance now holding N
    enrolments and welcome on; timed is the hook alone, inside the completion's transaction:
    the indexed lookup, one plan (enrolment, role, log), the welcome render and outbox row.
    The same for K users completing C1, whose target instance holds only them; and the whole
    ``complete_course`` of A (store, log, hook, commit). Aim: under 10 ms.

Wall times depend on what else the machine runs; CPU times of this process are shown beside them
(on SQLite they are the work itself, on PostgreSQL the server's share is not in them).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import enrol_completion
from _results import record
from _support import Baselines, backend, fresh_database, servers
from enrol_completion import welcome
from enrol_completion.sources import CompletionSource
from enrolkit import access
from enrolkit.enrolments import add_instance, update_instance
from enrolkit.models import Base, Course, CourseCompletion, EnrolInstance, Role, User, UserEnrolment
from enrolkit.plugins import Plugins
from enrolkit.runtime import Runtime
from sqlalchemy import func, insert, select

BENCH = "bench_completion"
NOW = 1_790_000_000
YEAR = 365 * 86_400


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="database URL (default: SQLite, and PostgreSQL if set)")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--courses", type=int, default=10_000)
    parser.add_argument("--completions", type=int, default=200, help="K, for (c)")
    parser.add_argument("--quick", action="store_true", help="5,000 users, 500 courses, K = 20")
    args = parser.parse_args()
    if args.quick:
        args.users, args.courses, args.completions = 5_000, 500, 20
    os.environ["ENROLKIT_NOW"] = str(NOW)
    for server in servers(args.url):
        with tempfile.TemporaryDirectory() as folder, fresh_database(server, Path(folder)) as url:
            run(url, args.users, args.courses, args.completions)


def run(url: str, users: int, courses: int, completions: int) -> None:
    runtime = Runtime(url, Plugins(entry_points=False, extra=(enrol_completion,)))
    Base.metadata.create_all(runtime.db)
    runtime.bootstrap()
    baselines = Baselines(runtime.db)
    with runtime.site() as site:
        source, target = _setup(site, users, courses)

        mark = baselines.mark()
        wall, cpu = time.perf_counter(), time.process_time()
        result = add_instance(
            site, target, "completion", {"source": "A", "welcome": "off"}, backfill=True
        )
        backfill = (time.perf_counter() - wall, time.process_time() - cpu)
        assert len(result.outcome.enrolled) == users, result.outcome.counts()
        instance = result.instance
        site.session.commit()
        base = baselines.measure(mark)

        update_instance(site, instance, {"welcome": "on"})
        some = list(site.session.scalars(select(User.id).order_by(User.id).limit(2_000)))
        started = time.perf_counter()
        with site.atomic():
            sent = welcome.send(site, instance, some)
        per_welcome = (time.perf_counter() - started) / len(some)
        assert sent == len(some), sent

        newcomers = _newcomers(site, 3 * completions)
        big = _hook_times(site, source, newcomers[:completions])
        small_source = site.session.scalar(select(Course).where(Course.shortname == "C1"))
        small = _hook_times(site, small_source, newcomers[completions : 2 * completions])
        whole = []
        for user in newcomers[2 * completions :]:
            started = time.perf_counter()
            access.complete_course(site, user, source, NOW)
            whole.append(time.perf_counter() - started)
        enrolled = site.session.scalar(
            select(func.count()).where(UserEnrolment.instance_id == instance.id)
        )
        assert enrolled == users + 2 * completions, enrolled
    runtime.dispose()

    name = backend(url)
    print(f"backend: {name}, completers: {users:,}, completion instances: {courses + 1:,}")
    print(
        f"(a) backfill of {users:,} past completers, welcome off: {backfill[0]:.2f} s"
        f" (CPU of this process {backfill[1]:.2f} s; aim: < 3 s)"
    )
    print(f"    {base.ratios(backfill[0])}")
    print(f"(b) welcome message queued, per user: {per_welcome * 1000:.2f} ms")
    print(f"(c) on_completion, one user, welcome on (aim: < 10 ms), {completions} runs:")
    print(f"    into the instance holding {users:,} enrolments: {_summary(big)}")
    print(f"    into an instance holding few enrolments:       {_summary(small)}")
    print(f"    whole complete_course (store, log, hook, commit): {_summary(whole)}")
    figure = f"backfill of {users:,} past completers"
    record(BENCH, figure, name, backfill[0], "s")
    record(BENCH, f"{figure}: vs raw", name, backfill[0] / base.raw, "x")
    record(BENCH, f"{figure}: vs set-based", name, backfill[0] / base.set, "x")
    record(BENCH, "welcome message queued, per user", name, per_welcome * 1000, "ms")
    hook = f"on_completion into an instance of {users:,}, median"
    record(BENCH, hook, name, statistics.median(t[0] for t in big) * 1000, "ms")
    whole_figure = "whole complete_course, median"
    record(BENCH, whole_figure, name, statistics.median(whole) * 1000, "ms")


def _summary(times: list[tuple[float, float]] | list[float]) -> str:
    walls = sorted(t[0] if isinstance(t, tuple) else t for t in times)
    text = (
        f"median {statistics.median(walls) * 1000:.2f} ms,"
        f" p95 {walls[int(len(walls) * 0.95) - 1] * 1000:.2f} ms"
    )
    if isinstance(times[0], tuple):
        text += f" (CPU median {statistics.median(t[1] for t in times) * 1000:.2f} ms)"
    return text


def _newcomers(site, count: int) -> list[User]:
    site.session.execute(
        insert(User),
        [
            dict(username=f"new{i}", email=f"new{i}@example.org", firstname="New",
                 lastname=str(i), timecreated=NOW)
            for i in range(count)
        ],
    )  # fmt: skip
    site.session.commit()
    return list(
        site.session.scalars(select(User).where(User.username.startswith("new")).order_by(User.id))
    )


def _hook_times(site, source: Course, users: list[User]) -> list[tuple[float, float]]:
    """The hook alone (wall, CPU), inside each completion's own transaction."""
    times = []
    for user in users:
        with site.atomic():
            site.session.add(
                CourseCompletion(user_id=user.id, course_id=source.id, timecompleted=NOW)
            )
            site.session.flush()
            wall, cpu = time.perf_counter(), time.process_time()
            site.plugins.on_completion(site=site, user=user, course=source, timecompleted=NOW)
            times.append((time.perf_counter() - wall, time.process_time() - cpu))
    return times


def _setup(site, users: int, courses: int) -> tuple[Course, Course]:
    """Users who all completed A; B; ``courses`` more courses, each with a completion instance
    whose source is another of them; the method enabled."""
    site.session.execute(
        insert(User),
        [
            dict(username=f"user{i}", email=f"user{i}@example.org", firstname="User",
                 lastname=str(i), timecreated=NOW)
            for i in range(1, users + 1)
        ],
    )  # fmt: skip
    site.session.execute(
        insert(Course),
        [dict(shortname=name, fullname=f"Course {name}", timecreated=NOW) for name in ("A", "B")]
        + [
            dict(shortname=f"C{i}", fullname=f"Course {i}", timecreated=NOW) for i in range(courses)
        ],
    )
    ids = dict(site.session.execute(select(Course.shortname, Course.id)).all())
    source, target = site.session.get(Course, ids["A"]), site.session.get(Course, ids["B"])
    site.session.execute(
        insert(CourseCompletion).from_select(
            ["user_id", "course_id", "timecompleted"],
            select(User.id, source.id, NOW - 2 * YEAR + User.id * 600),
        )
    )
    student = site.session.scalar(select(Role.id).where(Role.shortname == "student"))
    site.session.execute(
        insert(EnrolInstance),
        [
            dict(course_id=ids[f"C{i}"], method="completion", role_id=student, enabled=True,
                 settings={"source": f"C{(i + 1) % courses}", "welcome": True})
            for i in range(courses)
        ],
    )  # fmt: skip
    instances = site.session.execute(
        select(EnrolInstance.id, EnrolInstance.settings).where(EnrolInstance.method == "completion")
    ).all()
    site.session.execute(
        insert(CompletionSource),
        [dict(instance_id=i, source_id=ids[settings["source"]]) for i, settings in instances],
    )
    site.set_method_enabled("completion", True)
    site.session.commit()
    return source, target


if __name__ == "__main__":
    sys.exit(main())
