"""Run every benchmark of ``make bench`` and rewrite the generated section of RESULTS.md.

    .venv/bin/python benchmarks/run_all.py [--only bench_sync,...] [--output PATH] [ARGS...]

Each script of :data:`SCRIPTS` runs once, in its own process, with its own arguments (the flat
file's ``--memory``), then ``ARGS`` (e.g. ``--quick``), and ``ENROLKIT_BENCH_RESULTS`` naming the
file its figures are appended to. A script runs on SQLite and, when ``ENROLKIT_TEST_POSTGRES_URL``
names a server, on PostgreSQL too (``make bench`` starts a throwaway cluster for that). Their
output streams to the console. A script that fails does not stop the others: the section lists
it, and the exit status is non-zero.

Left out, as they need long runs or a set-up of their own (run them by hand; they record no
figures): ``bench_load.py`` (two nodes under LMS traffic, minutes), ``bench_cli.py``,
``bench_scim.py`` and ``bench_webhooks.py``.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import _results
from _support import PG_ENV

HERE = Path(__file__).resolve().parent
#: The scripts, in order, with the arguments they always get.
SCRIPTS = {
    "bench_engine": [],
    "bench_sync": [],
    "bench_flatfile": ["--memory"],
    "bench_completion": [],
    "bench_autoenrol": [],
    "bench_growth": [],
    "bench_rules": [],
    "bench_web": [],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated script names (default: all)")
    parser.add_argument("--output", type=Path, default=HERE / "RESULTS.md")
    args, passed = parser.parse_known_args()
    scripts = args.only.split(",") if args.only else list(SCRIPTS)
    started, load_start = time.time(), os.getloadavg()[0]
    failures = []
    with tempfile.TemporaryDirectory() as folder:
        records = Path(folder) / "records.jsonl"
        env = {**os.environ, _results.ENV: str(records)}
        for name in scripts:
            arguments = [*SCRIPTS.get(name, []), *passed]
            command = [sys.executable, str(HERE / f"{name}.py"), *arguments]
            print(f"== {' '.join([name + '.py', *arguments])}", flush=True)
            status = subprocess.run(command, env=env).returncode
            if status:
                failures.append(f"{name}.py exited with status {status} (see its output)")
        context = {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "command": _command(sys.argv[1:]),
            "commit": _commit(),
            "minutes": (time.time() - started) / 60,
            "cores": os.cpu_count(),
            "memory_gib": _memory_gib(),
            "load_start": load_start,
            "load_end": os.getloadavg()[0],
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "postgresql": _postgres_version(),
            "failures": failures,
        }
        section = _results.render(_results.load(records), context)
    document = args.output.read_text(encoding="utf-8") if args.output.exists() else "# Results\n"
    args.output.write_text(_results.splice(document, section), encoding="utf-8")
    print(f"== wrote {args.output}" + (f"; {len(failures)} script(s) failed" if failures else ""))
    return 1 if failures else 0


def _command(arguments: list[str]) -> str:
    """How to make this run again."""
    return "make bench" + (f" BENCH_ARGS='{' '.join(arguments)}'" if arguments else "")


def _commit() -> str:
    described = subprocess.run(
        ["git", "-C", str(HERE), "describe", "--always", "--dirty"], capture_output=True, text=True
    )
    return described.stdout.strip() or "an unknown commit"


def _memory_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024**2
    return 0.0


def _postgres_version() -> str | None:
    server = os.environ.get(PG_ENV)
    if not server:
        return None
    from sqlalchemy import create_engine, text

    db = create_engine(server.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with db.connect() as conn:
            return conn.scalar(text("SHOW server_version"))
    finally:
        db.dispose()


if __name__ == "__main__":
    sys.exit(main())
