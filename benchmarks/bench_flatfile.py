"""How fast, and in how much memory, the flat-file method applies a big file.

    .venv/bin/python benchmarks/bench_flatfile.py [--url URL] [--sizes 100000,1000000]
                                                  [--users N] [--courses N] [--chunk-size N]

For each size, on a fresh database (a temporary SQLite file, or a new database on the
PostgreSQL server of ``--url``, dropped afterwards):

1. set-up (not measured): ``--users`` users, ``--courses`` courses, the method enabled, and a
   file of that many ``add`` lines (header format), each a different user and course pair, in
   user order so that every course's lines are spread over the whole file;
2. ``flatfile``: a fresh process applies the drop folder (``enrol_flatfile.processor.process``,
   as the scheduled task does): its wall time, split into reading and applying, and its peak
   resident memory (``VmHWM``), also shown above the process's size before the run;
3. ``raw``: in the set-up process, one ``executemany`` INSERT of the resulting user_enrolments
   rows and of the resulting role_assignments rows into copies of those two tables (same
   columns, keys, indexes and foreign keys), the parameter lists built before the clock starts,
   then the commit: the bare database write of the same rows (as ``bench_engine.py`` measures).

Aims (issue): 100,000 lines in a few seconds and at most 5x the raw insert; memory flat in the
file size (1,000,000 lines in at most twice the memory of 100,000).
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
import uuid
from pathlib import Path

from sqlalchemy import MetaData, create_engine, insert, select, text

NOW = 1_790_000_000
HEADER = "operation,username,course,role,timestart,timeend\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--sizes", default="100000,1000000", help="file sizes, in lines")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--courses", type=int, default=1_000)
    parser.add_argument("--chunk-size", type=int, default=5000)
    parser.add_argument("--apply", metavar="HOME", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.apply:
        apply_folder(args.url)
        return
    sizes = [int(size) for size in args.sizes.split(",")]
    if max(sizes) > args.users * args.courses:
        parser.error("more lines than user and course pairs")
    rows = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as folder:
            url, cleanup = _database(args.url, Path(folder))
            try:
                rows.append(run(url, Path(folder), size, args))
            finally:
                cleanup()
    report(rows, args)


def run(url: str, folder: Path, lines: int, args) -> dict:
    home = folder / "home"
    setup(url, home, lines, args)
    env = {**os.environ, "ENROLKIT_HOME": str(home), "ENROLKIT_NOW": str(NOW)}
    child = subprocess.run(
        [sys.executable, __file__, "--apply", str(home), "--url", url],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    measured = json.loads(child.stdout.strip().splitlines()[-1])
    measured["raw"] = raw_insert(url)
    measured["lines"] = lines
    return measured


def setup(url: str, home: Path, lines: int, args) -> None:
    from enrolkit.models import Base, Course, User
    from enrolkit.plugins import Plugins
    from enrolkit.runtime import Runtime

    runtime = Runtime(url, Plugins())
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


def raw_insert(url: str) -> float:
    """Seconds to insert the rows the run produced into same-shaped copies, with executemany."""
    from enrolkit.db import make_engine
    from enrolkit.models import Base

    db = make_engine(url)
    metadata = MetaData()
    for name in ("users", "roles", "enrol_instances", "courses"):
        Base.metadata.tables[name].to_metadata(metadata)
    copies = []
    for name in ("user_enrolments", "role_assignments"):
        source = Base.metadata.tables[name]
        copy = source.to_metadata(metadata, name=f"raw_{name}")
        for item in (*copy.indexes, *copy.constraints):
            if item.name:
                item.name = f"raw_{item.name}"[:63]  # PostgreSQL's limit
        copies.append((source, copy))
    metadata.create_all(db, tables=[copy for _, copy in copies])
    with db.connect() as conn:
        params = [
            (
                copy,
                [dict(row._mapping) for row in conn.execute(select(source).order_by(source.c.id))],
            )
            for source, copy in copies
        ]
    for _, rows in params:
        for row in rows:
            del row["id"]
    started = time.perf_counter()
    with db.begin() as conn:
        for copy, rows in params:
            conn.execute(insert(copy), rows)
    seconds = time.perf_counter() - started
    db.dispose()
    return seconds


def report(rows: list[dict], args) -> None:
    print(f"users: {args.users:,}, courses: {args.courses:,}, lines per transaction: "
          f"{args.chunk_size:,}, backend: {(args.url or 'sqlite').split(':', 1)[0]}")  # fmt: skip
    for row in rows:
        phases = ", ".join(f"{name} {secs:.2f} s" for name, secs in row["phases"].items())
        print(
            f"{row['lines']:>9,} lines: flatfile {row['seconds']:7.2f} s ({phases}); "
            f"raw insert of {2 * row['counts']['enrolled']:,} rows {row['raw']:6.2f} s; "
            f"ratio {row['seconds'] / row['raw']:5.2f}x; peak RSS {row['peak_rss_mb']:.0f} MB "
            f"({row['peak_rss_mb'] - row['rss_before_mb']:.0f} MB over the "
            f"{row['rss_before_mb']:.0f} MB before the run)"
        )
    if len(rows) > 1:
        small, large = rows[0], rows[-1]
        print(
            f"memory {large['lines']:,} vs {small['lines']:,} lines: "
            f"{large['peak_rss_mb'] / small['peak_rss_mb']:.2f}x (aim: at most 2x)"
        )
    print("aims: 100,000 lines in a few seconds, at most 5x the raw insert")


def _database(url: str | None, folder: Path):
    if not url:
        return f"sqlite:///{folder / 'bench.db'}", lambda: None
    if not url.startswith("postgresql"):
        return url, lambda: None
    name = f"ek_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(
        url.replace("postgresql://", "postgresql+psycopg://", 1), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()

    return url.rsplit("/", 1)[0] + "/" + name, drop


if __name__ == "__main__":
    main()
