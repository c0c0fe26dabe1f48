"""Issue 12, Low items of the command line: each attack once gave a traceback, an "internal
error ... this is a bug" or a dump of SQL; each now gets one line on stderr and a non-zero exit,
from the real ``enrolkit`` command in a subprocess, on SQLite and PostgreSQL where a database is
involved."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from enrolkit.models import LogEntry, User, UserEnrolment
from enrolkit.testing import SiteFactory
from sqlalchemy import create_engine, func, inspect, select, text

ENROLKIT = str(Path(sys.executable).with_name("enrolkit"))
DAMAGED = (
    "the database at {where} is damaged or is not an enrolkit database; restore it from a "
    "backup, or point ENROLKIT_HOME or ENROLKIT_DATABASE_URL at an enrolkit database"
)
NO_SQL = ("SELECT", "INSERT", "UPDATE ", "[SQL", "[parameters", "sqlalche.me", "Traceback")


def one_line_error(result: subprocess.CompletedProcess, expected: str, code: int = 1) -> None:
    """Exit ``code``, nothing on stdout, and exactly ``enrolkit: error: <expected>`` on stderr."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert result.stderr == f"enrolkit: error: {expected}\n", result.stderr
    assert not any(word in result.stderr for word in NO_SQL)


@dataclass
class Home:
    """A data home for the real command; the database is its SQLite file, or a PostgreSQL one."""

    path: Path
    url: str
    env: dict = field(default_factory=dict)

    @property
    def sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    @property
    def db_file(self) -> Path:
        return self.path / "enrolkit.db"

    def environ(self, **extra: str) -> dict:
        environ = {**os.environ, "ENROLKIT_HOME": str(self.path), **self.env, **extra}
        for name in ("ENROLKIT_NOW", "ENROLKIT_DEBUG"):
            if name not in extra:
                environ.pop(name, None)
        if self.url == f"sqlite:///{self.db_file}":  # the home's own database
            environ.pop("ENROLKIT_DATABASE_URL", None)
        else:
            environ["ENROLKIT_DATABASE_URL"] = self.url
        return environ

    def run(self, *args: str, wrap: tuple[str, ...] = (), **env: str):
        return subprocess.run(
            [*wrap, ENROLKIT, *args],
            capture_output=True,
            text=True,
            env=self.environ(**env),
            timeout=120,
        )

    def count(self, model, *where) -> int:
        engine = create_engine(self.url.replace("postgresql://", "postgresql+psycopg://"))
        try:
            with engine.connect() as conn:
                return conn.scalar(select(func.count()).select_from(model).where(*where))
        finally:
            engine.dispose()


@pytest.fixture
def home(any_db, make_runtime, tmp_path) -> Home:
    """A site with ann, a course C1 with manual enrolment, on each backend; on SQLite the
    database is the home's own ``enrolkit.db`` (a read-only home makes it read-only)."""
    path = tmp_path / "home"
    path.mkdir()
    url = f"sqlite:///{path / 'enrolkit.db'}" if any_db.startswith("sqlite") else any_db
    runtime = make_runtime(url=url, entry_points=True)
    with runtime.site() as site, site.atomic():
        f = SiteFactory(site)
        f.user("ann")
        f.instance(f.course("C1"), "manual")
    runtime.dispose()
    return Home(path, url)


@pytest.fixture
def plain_home(tmp_path) -> Home:
    """A home whose database does not matter (the error comes first)."""
    path = tmp_path / "plain"
    return Home(path, f"sqlite:///{path / 'enrolkit.db'}")


# --- ENROLKIT_NOW and the time options ------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["99999999999999999999", "253402300800", "32503680000", "-1", "10000-01-01"]
)
def test_a_clock_override_out_of_range_is_one_line_on_every_command(plain_home, value):
    commands = [("task", "list"), ("--help",)] if value == "253402300800" else [("log",)]
    for args in commands:
        result = plain_home.run(*args, ENROLKIT_NOW=value)
        if value == "10000-01-01":  # not ISO 8601 at all (year 10000)
            expected = (
                f"ENROLKIT_NOW: {value!r} is not a time; give Unix seconds or ISO 8601 such as "
                "2026-09-01 or 2026-09-01T08:00:00Z"
            )
        else:
            expected = (
                f"ENROLKIT_NOW: {value!r} is out of range; give a time from 1970-01-01 to "
                "2999-12-31 (Unix seconds 0 to 32503679999), or unset it for the real time"
            )
        one_line_error(result, expected)
    assert not plain_home.path.exists()  # refused before anything was made


def test_the_last_accepted_clock_override_works(home):
    result = home.run("task", "list", "--json", ENROLKIT_NOW="2999-12-31T23:59:59Z")
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("enrolment", "add", "ann", "C1", "--end", "99999999999999999999"),
        ("enrolment", "add", "ann", "C1", "--start", "253402300800"),
        ("course", "complete", "ann", "C1", "--time", "99999999999999999999"),
        ("log", "--since", "-5"),
    ],
)
def test_a_time_option_out_of_range_is_one_line_and_writes_nothing(home, args):
    option, value = args[-2], args[-1]
    result = home.run(*args)
    one_line_error(
        result,
        f"{option}: {value!r} is out of range; give a time from 1970-01-01 to 9999-12-31 "
        "(Unix seconds 0 to 253402300799)",
    )
    assert home.count(UserEnrolment) == 0


# --- output cut short by its reader ---------------------------------------------------------------


def test_output_read_by_head_ends_quietly(home):
    """``enrolkit log | head -1``: the reader goes after one line; the command stops at once,
    saying nothing (exit 141, as a Unix tool killed by SIGPIPE), for long and short output."""
    engine = create_engine(home.url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(
            LogEntry.__table__.insert(),
            [
                {"time": 1_800_000_000 + i, "event": "x", "component": "core", "origin": "cli"}
                for i in range(3000)
            ],
        )
    engine.dispose()
    head = subprocess.run(
        f"{ENROLKIT} log --limit 3000 | head -1",
        shell=True,
        capture_output=True,
        text=True,
        env=home.environ(),
        timeout=120,
        executable="/bin/bash",
    )
    assert head.stdout.startswith("time") and head.stdout.count("\n") == 1
    assert head.stderr == ""
    # The reader is gone before the command writes a byte: the output still buffered at exit.
    process = subprocess.Popen(
        [ENROLKIT, "task", "list"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=home.environ(),
    )
    process.stdout.close()
    _, err = process.communicate(timeout=120)
    assert (process.returncode, err) == (141, b"")
    process = subprocess.Popen(
        [ENROLKIT, "log", "--limit", "3000", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=home.environ(),
    )
    assert process.stdout.readline() == b"[\n"
    process.stdout.close()
    _, err = process.communicate(timeout=120)
    # One big write that the pipe took in part: Python itself may end it quietly with 0.
    assert process.returncode in (0, 141) and err == b""


# --- a damaged database, or someone else's -------------------------------------------------------


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_file_that_is_not_sqlite_is_named_and_never_written(plain_home, tmp_path):
    plain_home.path.mkdir()
    plain_home.db_file.write_bytes(os.urandom(64 * 1024))
    before = digest(plain_home.db_file)
    users = tmp_path / "users.csv"
    users.write_text("username,email,firstname,lastname\nzed,zed@example.org,Zed,Z\n")
    expected = DAMAGED.format(where=plain_home.db_file)
    for args in (("log",), ("user", "import", str(users)), ("db", "upgrade"), ("cron",)):
        one_line_error(plain_home.run(*args), expected)
    assert digest(plain_home.db_file) == before
    assert sorted(p.name for p in plain_home.path.iterdir()) == ["enrolkit.db"]


def test_an_enrolkit_file_with_damaged_pages_refuses_an_import_before_writing(home, tmp_path):
    """The header is intact, so SQLite opens the file; pages in the middle are overwritten.
    The import checks the file first (PRAGMA quick_check) and writes nothing."""
    if not home.sqlite:
        pytest.skip("a damaged file is SQLite's case; PostgreSQL checks its own pages")
    with sqlite3.connect(home.db_file) as conn:  # enough rows for many pages
        conn.executemany(
            "INSERT INTO log (time, event, component, origin, reason) VALUES (?, 'x', 'core',"
            " 'cli', ?)",
            [(1_800_000_000 + i, "r" * 200) for i in range(3000)],
        )
    conn.close()
    size = home.db_file.stat().st_size
    with open(home.db_file, "r+b") as out:
        out.seek(size - 40 * 4096)
        out.write(b"\xff" * 20 * 4096)
    before = digest(home.db_file)
    users = tmp_path / "users.csv"
    users.write_text("username,email,firstname,lastname\nzed,zed@example.org,Zed,Z\n")
    courses = tmp_path / "courses.csv"
    courses.write_text("shortname,fullname\nC9,Course nine\n")
    cohorts = tmp_path / "cohorts.csv"
    cohorts.write_text("idnumber,name\nk9,Cohort nine\n")
    expected = DAMAGED.format(where=home.db_file)
    for args in (
        ("user", "import", str(users)),
        ("course", "import", str(courses)),
        ("cohort", "import", str(cohorts)),
        ("db", "upgrade"),
    ):
        one_line_error(home.run(*args), expected)
        assert digest(home.db_file) == before
        assert (
            not Path(f"{home.db_file}-wal").exists()
            or not Path(f"{home.db_file}-wal").stat().st_size
        )


def test_another_applications_database_is_named_and_db_upgrade_leaves_it_alone(any_db, tmp_path):
    url = any_db
    if any_db.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'home' / 'enrolkit.db'}"
        (tmp_path / "home").mkdir()
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total INTEGER)"))
        conn.execute(text("INSERT INTO invoices VALUES (1, 100)"))
    other = Home(tmp_path / "home", url)
    where = other.db_file if other.sqlite else url.replace("postgresql://", "postgresql+psycopg://")
    expected = DAMAGED.format(where=where)
    for args in (("db", "upgrade"), ("log",), ("enrolment", "add", "ann", "C1")):
        one_line_error(other.run(*args), expected)
    assert inspect(engine).get_table_names() == ["invoices"]
    engine.dispose()


# --- a read-only home --------------------------------------------------------------------------------


def read_only(home: Home) -> tuple[str, ...]:
    """Make the home and its database read-only for the command; returns the command prefix
    that makes root obey file modes (it ignores them otherwise)."""
    for child in home.path.iterdir():
        child.chmod(0o444)
    home.path.chmod(0o555)
    if os.geteuid() != 0:
        return ()
    if not shutil.which("setpriv"):
        pytest.skip("root ignores file modes, and setpriv is not here to drop that")
    return ("setpriv", "--bounding-set=-dac_override,-dac_read_search,-fowner")


@pytest.fixture
def restore_modes(home):
    yield
    home.path.chmod(0o755)
    for child in home.path.iterdir():
        child.chmod(0o644)


def test_a_read_only_home_gives_one_line_not_a_sql_dump(home, restore_modes):
    if not home.sqlite:
        pytest.skip("the home holds the database on SQLite only")
    wrap = read_only(home)
    result = home.run("enrolment", "add", "ann", "C1", wrap=wrap)
    one_line_error(
        result,
        f"cannot write to the database at {home.db_file}: attempt to write a readonly database; "
        "check the permissions of the database and of the folder that holds it",
    )
    debug = home.run("enrolment", "add", "ann", "C1", wrap=wrap, ENROLKIT_DEBUG="1")
    assert debug.returncode != 0 and "Traceback" in debug.stderr  # the developer still sees it
    assert home.count(UserEnrolment) == 0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_without_a_writable_home_for_its_key_stops_at_start(home, restore_modes, tmp_path):
    if home.sqlite:  # the database lives elsewhere, writable: only the key is the problem
        elsewhere = tmp_path / "elsewhere.db"
        shutil.move(home.db_file, elsewhere)
        home = Home(home.path, f"sqlite:///{elsewhere}")
    wrap = read_only(home)
    started = time.monotonic()
    result = home.run("serve", "--port", str(free_port()), wrap=wrap)
    assert time.monotonic() - started < 60
    one_line_error(
        result,
        f"cannot keep the session key in {home.path / 'secret_key'}: Permission denied; make "
        "$ENROLKIT_HOME writable by this user, or set SECRET_KEY in config.py",
    )
    assert result.stdout == ""  # it never said it was serving


def test_serve_on_a_database_without_schema_stops_at_start(plain_home):
    result = plain_home.run("serve", "--port", str(free_port()))
    one_line_error(result, "the database has no schema yet; run: enrolkit db upgrade")


def test_a_user_import_into_a_healthy_database_still_works(home, tmp_path):
    users = tmp_path / "users.csv"
    users.write_text("username,email,firstname,lastname\nzed,zed@example.org,Zed,Z\n")
    result = home.run("user", "import", str(users))
    assert result.returncode == 0, result.stderr
    assert home.count(User, User.username == "zed") == 1
