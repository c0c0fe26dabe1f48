"""How the cost of a sync and of a flat file grows with the site: none vs 1,000,000 enrolments.

    .venv/bin/python benchmarks/bench_growth.py [--url URL] [--enrolments N] [--members M]
                                                [--repeat R] [--quick]

It runs on SQLite and, when ENROLKIT_TEST_POSTGRES_URL names a server, on PostgreSQL (new
databases, dropped afterwards); ``--url`` runs on that database server only. Per backend, two
databases hold the same people and courses: N / 10 users (at least M), N / 100 filler courses
with a manual instance each, and the courses measured. The *empty* one holds no enrolment; the
*full* one holds N enrolments (100 per filler instance, 10 per user), their N role assignments
and 2N log rows, written by set-based SQL with every index in place, then analysed (as a live
site's statistics would be) and, on SQLite, its write-ahead log checkpointed (as a live site's
would be). On each, timed R times (the minimum is kept):

(a) a cohort of M members (users who, in the full database, hold 10 enrolments each) added to a
    course: ``instance add COURSE cohort cohort=growth``, M enrolments and roles;
(b) a flat file of M ``add`` lines over 100 courses, the same users, applied as the scheduled
    task does (``enrol_flatfile.processor.process``).

Printed and recorded: each time, and full / empty. Moodle's cost grows 3-4x over this range; the
aim (issue 15) is at most 1.5x. ``--quick``: N = 100,000, M = 1,000. ``--enrolments`` alone tries
a smaller site (the fill of 1,000,000 takes about a minute per backend on a quiet 2-core machine).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _results import record
from _support import backend, fresh_database, servers
from enrol_flatfile.processor import process
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
)
from enrolkit.plugins import Plugins
from enrolkit.runtime import Runtime
from sqlalchemy import func, insert, literal, select, text

BENCH = "bench_growth"
NOW = 1_790_000_000
PER_INSTANCE, PER_USER, FILE_COURSES = 100, 10, 100
CHUNK = 20_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="database URL (default: SQLite, and PostgreSQL if set)")
    parser.add_argument("--enrolments", type=int, default=1_000_000, help="N, in the full site")
    parser.add_argument("--members", type=int, default=10_000, help="M: cohort and file size")
    parser.add_argument("--repeat", type=int, default=2, help="R: timings per figure")
    parser.add_argument("--quick", action="store_true", help="N = 100,000, M = 1,000")
    args = parser.parse_args()
    if args.quick:
        args.enrolments, args.members = 100_000, 1_000
    os.environ["ENROLKIT_NOW"] = str(NOW)
    for server in servers(args.url):
        name = backend(server)
        times = {}
        for label, enrolments in (("empty", 0), ("full", args.enrolments)):
            with tempfile.TemporaryDirectory() as folder:
                with fresh_database(server, Path(folder)) as url:
                    times[label] = measure(url, Path(folder), enrolments, args)
        report(name, times, args)


def measure(url: str, folder: Path, enrolments: int, args) -> dict[str, float]:
    """Build the site (with ``enrolments`` filler enrolments), then time (a) and (b)."""
    os.environ["ENROLKIT_HOME"] = str(folder / "home")
    plugins = Plugins()
    plugins.load_all()  # the plugins' models (the flat-file journal) join the metadata
    runtime = Runtime(url, plugins)
    Base.metadata.create_all(runtime.db)
    runtime.bootstrap()
    users = max(args.enrolments // PER_USER, args.members)
    started = time.perf_counter()
    build(runtime, users, args.enrolments // PER_INSTANCE, enrolments, args)
    print(
        f"   {backend(url)}: site with {users:,} users and {enrolments:,} enrolments built"
        f" in {time.perf_counter() - started:.1f} s"
    )
    cohort, flat = [], []
    with runtime.site(origin="cli") as site:
        for repeat in range(args.repeat):
            course = site.session.scalar(select(Course).where(Course.shortname == f"G{repeat}"))
            started = time.perf_counter()
            outcome = add_instance(site, course, "cohort", {"cohort": "growth"}).outcome
            cohort.append(time.perf_counter() - started)
            assert len(outcome.enrolled) == args.members, outcome.counts()

            path = write_file(folder / "home" / "flatfile", repeat, args.members)
            started = time.perf_counter()
            [result] = process(site, path=path)
            flat.append(time.perf_counter() - started)
            assert result.counts["enrolled"] == args.members, result.counts
    runtime.dispose()
    return {"cohort": min(cohort), "flatfile": min(flat)}


def build(runtime: Runtime, users: int, fillers: int, enrolments: int, args) -> None:
    """The people and courses of both sites; in the full one, the filler enrolments."""
    with runtime.site() as site, site.atomic():
        for start in range(0, users, CHUNK):
            site.session.execute(
                insert(User),
                [
                    dict(username=f"user{i}", email=f"user{i}@example.org", firstname="User",
                         lastname=str(i), timecreated=NOW)
                    for i in range(start, min(start + CHUNK, users))
                ],
            )  # fmt: skip
        measured = [f"G{r}" for r in range(args.repeat)] + [
            f"F{r}_{c}" for r in range(args.repeat) for c in range(FILE_COURSES)
        ]
        site.session.execute(
            insert(Course),
            [dict(shortname=f"K{i}", fullname=f"Filler {i}") for i in range(fillers)]
            + [dict(shortname=name, fullname=name) for name in measured],
        )
        cohort = Cohort(idnumber="growth", name="Growth")
        site.session.add(cohort)
        site.session.flush()
        site.session.execute(
            insert(CohortMember).from_select(
                ["cohort_id", "user_id"],
                select(literal(cohort.id), User.id).order_by(User.id).limit(args.members),
            )
        )
        student = site.session.scalar(select(Role.id).where(Role.shortname == "student"))
        site.session.execute(
            insert(EnrolInstance).from_select(
                ["course_id", "method", "role_id", "enabled", "settings"],
                select(Course.id, literal("manual"), literal(student), literal(True), text("'{}'"))
                .where(Course.shortname.like("K%"))
                .order_by(Course.id),
            )
        )
        site.set_method_enabled("flatfile", True)
        if enrolments:
            fill(site, enrolments, student)
    with runtime.db.begin() as conn:
        conn.exec_driver_sql("ANALYZE")
    if runtime.db.dialect.name == "sqlite":
        # The fill is one transaction of millions of rows: until a checkpoint resets it, the
        # write-ahead log holds them all, and every page read searches its index (the 10,000
        # member sync took 0.29-0.37 s instead of 0.19-0.20 s). A live site's log is checkpointed every
        # 1,000 pages of small transactions; a site just built in one is not what is measured.
        with runtime.db.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


def fill(site, enrolments: int, student: int) -> None:
    """``enrolments`` enrolments, role assignments and two log rows each, set-based: enrolment
    ``i`` puts user ``i mod users`` into filler instance ``i div 100``."""
    session = site.session
    users = session.execute(select(func.min(User.id), func.count())).one()
    first_instance, instances = session.execute(
        select(func.min(EnrolInstance.id), func.count()).where(EnrolInstance.method == "manual")
    ).one()
    first_course = session.scalar(select(func.min(Course.id)).where(Course.shortname.like("K%")))
    assert instances * PER_INSTANCE >= enrolments, "too few filler instances"
    numbers = "WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :count)"
    values = {
        "count": enrolments,
        "u0": users[0],
        "users": users[1],
        "i0": first_instance,
        "c0": first_course,
        "per": PER_INSTANCE,
        "now": NOW,
        "active": ACTIVE,
        "role": student,
        "context": COURSE,
    }
    session.execute(
        text(
            f"{numbers} INSERT INTO user_enrolments (instance_id, user_id, status, timestart,"
            " timeend, timecreated, timemodified)"
            " SELECT :i0 + i / :per, :u0 + i % :users, :active, 0, 0, :now, :now FROM n"
        ),
        values,
    )
    session.execute(
        text(
            f"{numbers} INSERT INTO role_assignments (role_id, user_id, contextlevel, instanceid,"
            " component, itemid, timemodified)"
            " SELECT :role, :u0 + i % :users, :context, :c0 + i / :per, 'enrol_manual',"
            " :i0 + i / :per, :now FROM n"
        ),
        values,
    )
    for event, reason in (("user_enrolled", "filler"), ("role_assigned", "role student: filler")):
        session.execute(
            text(
                f"{numbers} INSERT INTO log (time, event, component, course_id, user_id,"
                " instance_id, origin, reason)"
                " SELECT :now, :event, 'enrol_manual', :c0 + i / :per, :u0 + i % :users,"
                " :i0 + i / :per, 'cli', :reason FROM n"
            ),
            {**values, "event": event, "reason": reason},
        )


def write_file(drop: Path, repeat: int, lines: int) -> Path:
    """``lines`` add lines for users 0.. (the cohort's members), over 100 courses."""
    drop.mkdir(parents=True, exist_ok=True)
    path = drop / f"growth{repeat}.csv"
    with path.open("w") as out:
        out.write("operation,username,course,role,timestart,timeend\n")
        for i in range(lines):
            out.write(f"add,user{i},F{repeat}_{i % FILE_COURSES},student,,\n")
    return path


def report(name: str, times: dict[str, dict[str, float]], args) -> None:
    empty, full = times["empty"], times["full"]
    figures = {
        "cohort": f"{args.members:,}-member cohort sync",
        "flatfile": f"{args.members:,}-line flat file",
    }
    print(f"backend: {name}; minimum of {args.repeat} run(s) each")
    for key, figure in figures.items():
        growth = full[key] / empty[key]
        print(
            f"   {figure}: {empty[key]:6.2f} s with no enrolment, {full[key]:6.2f} s with "
            f"{args.enrolments:,}: {growth:.2f}x (aim: at most 1.5x)"
        )
        record(BENCH, f"{figure}, no enrolment", name, empty[key], "s")
        record(BENCH, f"{figure}, {args.enrolments:,} enrolments", name, full[key], "s")
        growth_figure = f"growth, {figure}, empty -> {args.enrolments:,} enrolments"
        record(BENCH, growth_figure, name, growth, "x")


if __name__ == "__main__":
    main()
