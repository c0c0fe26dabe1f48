"""How fast, and in how much memory, the flat-file method applies a big file.

    .venv/bin/python benchmarks/bench_flatfile.py [--url URL] [--sizes 100000] [--memory]
                                                  [--users N] [--courses N] [--chunk-size N]
                                                  [--quick]

It runs on new SQLite files and, when ENROLKIT_TEST_POSTGRES_URL names a server, on new databases
of that server (dropped afterwards); ``--url`` runs on that database server only. For each size,
on a fresh database:

1. set-up (not measured): ``--users`` users, ``--courses`` courses, the method enabled, and a
   file of that many ``add`` lines (header format), each a different user and course pair, in
   user order so that every course's lines are spread over the whole file;
2. ``flatfile``: a fresh process applies the drop folder (``enrol_flatfile.processor.process``,
   as the scheduled task does): its wall time, split into reading and applying, and its peak
   resident memory (``VmHWM``), also shown above the process's size before the run;
3. the baselines of ``_support.py``, the rows the run wrote written again into same-shaped
   copies: ``raw`` (executemany of the enrolments and role assignments, no log) and the
   set-based limit for rows that come from a file (``COPY`` of the enrolments, role assignments
   and log rows on PostgreSQL; on SQLite one executemany per table in one transaction).

``--memory`` adds a file ten times the largest size (1,000,000 lines by default), timed and
measured for memory only (its baselines would hold every row in this process): the peak memory
of the two processes is compared. ``--quick``: 2,000 lines (and 20,000 with ``--memory``) over
5,000 users and 100 courses.

Aims (issue 15): 100,000 lines over 1,000 courses in at most 4 s on SQLite and 5 s on
PostgreSQL, at most 2.5x (SQLite) and 3x (PostgreSQL) the set-based limit; 1,000,000 lines in at
most 1.2x the peak memory of 100,000.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _results import record
from _support import Baselines, backend, fresh_database, servers
from sqlalchemy import insert

NOW = 1_790_000_000
HEADER = "operation,username,course,role,timestart,timeend\n"
BENCH = "bench_flatfile"
#: Moodle 4.5's flat-file sync on PostgreSQL, same machine kind: about 57 s per 10,000 lines.
MOODLE_SECONDS_PER_LINE = 57 / 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="database URL (default: SQLite, and PostgreSQL if set)")
    parser.add_argument("--sizes", default="100000", help="file sizes, in lines")
    parser.add_argument("--memory", action="store_true", help="also 10x the largest size")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--courses", type=int, default=1_000)
    parser.add_argument("--chunk-size", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true", help="2,000 lines, 5,000 users")
    parser.add_argument("--apply", metavar="HOME", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.apply:
        apply_folder(args.url)
        return
    if args.quick:
        args.sizes, args.users, args.courses = "2000", 5_000, 100
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.memory:
        sizes.append(10 * max(sizes))
    if max(sizes) > args.users * args.courses:
        parser.error("more lines than user and course pairs")
    for server in servers(args.url):
        rows = []
        for number, size in enumerate(sizes):
            with tempfile.TemporaryDirectory() as folder:
                with fresh_database(server, Path(folder)) as url:
                    measure_baselines = not (args.memory and number == len(sizes) - 1)
                    rows.append(run(url, Path(folder), size, args, measure_baselines))
        report(backend(server), rows, args)


def run(url: str, folder: Path, lines: int, args, measure_baselines: bool) -> dict:
    """Set up, apply the file in a fresh process, then (if asked) time the baselines."""
    from enrolkit.db import make_engine

    home = folder / "home"
    setup(url, home, lines, args)
    db = make_engine(url)
    baselines = Baselines(db) if measure_baselines else None
    mark = baselines.mark() if baselines else {}
    env = {**os.environ, "ENROLKIT_HOME": str(home), "ENROLKIT_NOW": str(NOW)}
    child = subprocess.run(
        [sys.executable, __file__, "--apply", str(home), "--url", url],
        env=env,
        capture_output=True,
        text=True,
    )
    if child.returncode:
        raise SystemExit(f"applying the file failed:\n{child.stderr}")
    measured = json.loads(child.stdout.strip().splitlines()[-1])
    measured["lines"] = lines
    if baselines:
        measured["base"] = baselines.measure(mark, from_file=True)
    db.dispose()
    return measured


def setup(url: str, home: Path, lines: int, args) -> None:
    from enrolkit.models import Base, Course, User
    from enrolkit.plugins import Plugins
    from enrolkit.runtime import Runtime

    plugins = Plugins()
    plugins.load_all()  # the plugins' models (the flat-file journal) join the metadata
    runtime = Runtime(url, plugins)
    Base.metadata.create_all(runtime.db)
    runtime.bootstrap()
    with runtime.site() as site, site.atomic():
        site.session.execute(
            insert(User),
            [
                {"username": f"user{i}", "email": f"user{i}@example.org", "timecreated": NOW}
                for i in range(args.users)
            ],
        )
        site.session.execute(
            insert(Course),
            [{"shortname": f"C{c}", "timecreated": NOW} for c in range(args.courses)],
        )
        site.set_method_enabled("flatfile", True)
        site.set_method_settings("flatfile", {"chunk_size": str(args.chunk_size)})
    runtime.dispose()
    drop = home / "flatfile"
    drop.mkdir(parents=True)
    with (drop / "enrol.csv").open("w") as out:
        out.write(HEADER)
        for i in range(lines):
            user, k = i % args.users, i // args.users
            out.write(f"add,user{user},C{(user + k) % args.courses},student,,\n")


def apply_folder(url: str) -> None:
    """In a fresh process: apply the drop folder; print time, phases and peak memory as JSON."""
    from enrol_flatfile.processor import process
    from enrolkit.runtime import Runtime

    runtime = Runtime(url)
    phases: dict[str, float] = {}

    def progress(label: str, total: int, size: int):
        return _Phase(phases, label.split()[0])

    with runtime.site(origin="cron") as site:
        site.method_settings("flatfile")  # warm: imports and first queries
        before = _rss_mb()
        started = time.perf_counter()
        [result] = process(site, progress=progress)
        seconds = time.perf_counter() - started
    assert result.counts["enrolled"] == result.counts["lines"], result.counts
    print(
        json.dumps(
            {
                "seconds": seconds,
                "phases": phases,
                "rss_before_mb": before,
                "peak_rss_mb": _rss_mb(),
                "counts": result.counts,
            }
        )
    )


class _Phase:
    def __init__(self, phases: dict, name: str) -> None:
        self.phases, self.name = phases, name

    def __enter__(self):
        self.started = time.perf_counter()
        return lambda n: None

    def __exit__(self, *exc) -> None:
        self.phases[self.name] = time.perf_counter() - self.started


def _rss_mb() -> float:
    """Peak resident memory of this process so far, in MB. ``VmHWM``, not ``getrusage``: on
    Linux the latter keeps the peak of the parent that forked this process."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kilobytes = next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM"))
    return int(kilobytes) / 1024


def report(name: str, rows: list[dict], args) -> None:
    print(f"backend: {name}, users: {args.users:,}, courses: {args.courses:,}, "
          f"lines per transaction: {args.chunk_size:,}")  # fmt: skip
    for row in rows:
        phases = ", ".join(f"{phase} {secs:.2f} s" for phase, secs in row["phases"].items())
        growth = row["peak_rss_mb"] - row["rss_before_mb"]
        print(
            f"{row['lines']:>9,} lines: flatfile {row['seconds']:7.2f} s ({phases}); peak RSS "
            f"{row['peak_rss_mb']:.0f} MB ({growth:.0f} MB over the {row['rss_before_mb']:.0f} MB"
            " before the run)"
        )
        figure = f"flat file, {row['lines']:,} lines / {args.courses:,} courses"
        record(BENCH, figure, name, row["seconds"], "s")
        record(BENCH, f"{figure}: peak memory", name, row["peak_rss_mb"], "MB")
        if "base" in row:
            base = row["base"]
            print(f"{'':17}{base.ratios(row['seconds'])}")
            record(BENCH, f"{figure}: vs raw", name, row["seconds"] / base.raw, "x")
            record(BENCH, f"{figure}: vs set-based", name, row["seconds"] / base.set, "x")
        moodle = MOODLE_SECONDS_PER_LINE * row["lines"]
        faster = f"{figure}: times faster than Moodle (about {moodle:,.0f} s)"
        record(BENCH, faster, name, moodle / row["seconds"], "x")
        print(f"{'':17}{moodle / row['seconds']:.0f}x faster than Moodle (about {moodle:,.0f} s)")
    if args.memory:
        small, large = rows[-2], rows[-1]
        ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
        print(f"peak memory, {large['lines']:,} vs {small['lines']:,} lines: {ratio:.2f}x")
        figure = f"flat file peak memory, {large['lines']:,} vs {small['lines']:,} lines"
        record(BENCH, figure, name, ratio, "x")


if __name__ == "__main__":
    main()
