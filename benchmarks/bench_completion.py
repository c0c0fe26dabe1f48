"""How fast the completion method backfills 100,000 past completers, and what one completion costs.

    .venv/bin/python benchmarks/bench_completion.py [--url URL] [--users N] [--courses M]

Without ``--url`` it runs on a new SQLite file in a temporary folder. With a PostgreSQL URL it
creates a new database on that server for the run and drops it afterwards.

The site: N users, all of whom completed course A at some time in the past two years; M other
courses, each with a completion instance naming another course (so finding the instances that
wait for A is a lookup among M, not a scan); course B, empty.

(a) ``backfill``: ``enrolkit instance add B completion source=A welcome=off --backfill``, i.e.
    ``add_instance(..., backfill=True)``: the instance, the selection of the N completers not yet
    in B, one desired-state plan (N enrolments, N role assignments, 2N log rows), the commit.
    Aim: under 3 s on SQLite for N = 100,000.
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
import uuid
from pathlib import Path

import enrol_completion
from enrol_completion import welcome
from enrol_completion.sources import CompletionSource
from enrolkit import access
from enrolkit.enrolments import add_instance, update_instance
from enrolkit.models import Base, Course, CourseCompletion, EnrolInstance, Role, User, UserEnrolment
from enrolkit.plugins import Plugins
from enrolkit.runtime import Runtime
from sqlalchemy import create_engine, func, insert, select, text

NOW = 1_790_000_000
YEAR = 365 * 86_400


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--courses", type=int, default=10_000)
    parser.add_argument("--completions", type=int, default=200, help="K, for (c)")
    args = parser.parse_args()
    os.environ["ENROLKIT_NOW"] = str(NOW)
    with tempfile.TemporaryDirectory() as folder:
        url, cleanup = _database(args.url, Path(folder))
        try:
            run(url, args.users, args.courses, args.completions)
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


def run(url: str, users: int, courses: int, completions: int) -> None:
    runtime = Runtime(url, Plugins(entry_points=False, extra=(enrol_completion,)))
    Base.metadata.create_all(runtime.db)
    runtime.bootstrap()
    with runtime.site() as site:
        source, target = _setup(site, users, courses)

        wall, cpu = time.perf_counter(), time.process_time()
        result = add_instance(
            site, target, "completion", {"source": "A", "welcome": "off"}, backfill=True
        )
        backfill = (time.perf_counter() - wall, time.process_time() - cpu)
        assert len(result.outcome.enrolled) == users, result.outcome.counts()
        instance = result.instance

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

    backend = url.split(":", 1)[0]
    print(f"backend: {backend}, completers: {users:,}, completion instances: {courses + 1:,}")
    print(
        f"(a) backfill of {users:,} past completers, welcome off: {backfill[0]:.2f} s"
        f" (CPU of this process {backfill[1]:.2f} s; aim: < 3 s)"
    )
    print(f"(b) welcome message queued, per user: {per_welcome * 1000:.2f} ms")
    print(f"(c) on_completion, one user, welcome on (aim: < 10 ms), {completions} runs:")
    print(f"    into the instance holding {users:,} enrolments: {_summary(big)}")
    print(f"    into an instance holding few enrolments:       {_summary(small)}")
    print(f"    whole complete_course (store, log, hook, commit): {_summary(whole)}")


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
