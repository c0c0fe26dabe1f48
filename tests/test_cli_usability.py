"""The CLI as people meet it (issue 16, "The CLI, as people met it"): a plain command that
starts fast, tables a person can read, a first cron that runs everything, a drop folder made
when the flat file is enabled, exit status 2 for rejected lines, ids never reused.

Every test runs the installed ``enrolkit`` script in a subprocess, on SQLite and PostgreSQL
where a database is involved (``ENROLKIT_DATABASE_URL`` set to the ``any_db`` database).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

ENROLKIT = str(Path(sys.executable).with_name("enrolkit"))


@pytest.fixture
def run(tmp_path, any_db):
    """The real ``enrolkit`` on a fresh database of each backend, with its own data home."""
    home = tmp_path / "home"

    def run(*args: str, env: dict | None = None, **extra: str) -> subprocess.CompletedProcess:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("ENROLKIT_")}
        environ.update(ENROLKIT_HOME=str(home), ENROLKIT_DATABASE_URL=any_db, **(env or {}))
        return subprocess.run(
            [ENROLKIT, *args], capture_output=True, text=True, env=environ, timeout=120, **extra
        )

    run.home = home
    run.url = any_db
    return run


def ok(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result.stdout


def sql(url: str, statement: str, **params) -> list:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.begin() as connection:
            result = connection.execute(text(statement), params)
            return result.all() if result.returns_rows else []
    finally:
        engine.dispose()


def imported_modules(result: subprocess.CompletedProcess) -> set[str]:
    """The modules a run imported (``PYTHONPROFILEIMPORTTIME`` on stderr)."""
    return {
        line.rsplit("|", 1)[1].strip()
        for line in result.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def imported(result: subprocess.CompletedProcess) -> set[str]:
    """The top-level packages a run imported."""
    return {name.split(".")[0] for name in imported_modules(result)}


# --- 1. speed: nothing loaded that the command does not use ----------------------------------


def test_help_and_a_listing_load_only_what_they_use(run):
    profile = {"PYTHONPROFILEIMPORTTIME": "1"}
    shown = run("--help", env=profile)
    assert shown.returncode == 0
    assert not imported(shown) & {
        "sqlalchemy", "flask", "flask_smorest", "alembic", "marshmallow", "waitress", "jinja2",
    }  # fmt: skip
    # the integrations' modules (webhook delivery's hooks, SCIM, the change feed) load on use
    assert not imported_modules(shown) & {"enrolkit.webhooks", "enrolkit.scim", "enrolkit.feed"}
    ok(run("db", "upgrade"))
    ok(run("demo"))
    listed = run("enrolment", "list", "MATH101", "--json", env=profile)
    assert listed.returncode == 0
    assert "prof.martin" in [row["username"] for row in json.loads(listed.stdout)]
    assert not imported(listed) & {"flask", "flask_smorest", "alembic", "waitress", "marshmallow"}


def test_a_schema_older_than_the_code_is_refused_with_what_to_do(run):
    ok(run("db", "upgrade"))
    heads = sorted(row[0] for row in sql(run.url, "SELECT version_num FROM alembic_version"))
    sql(run.url, "DELETE FROM alembic_version WHERE version_num = :v", v=heads[0])
    refused = run("enrolment", "list", "MATH101")
    assert refused.returncode == 1
    assert refused.stderr == (
        "enrolkit: error: the database schema is older than the installed enrolkit and plugins "
        f"(missing revision {heads[0]}); run: enrolkit db upgrade\n"
    )
    sql(run.url, "INSERT INTO alembic_version (version_num) VALUES (:v)", v=heads[0])
    assert "no course with shortname 'MATH101'" in run("enrolment", "list", "MATH101").stderr


# --- 2. a plain click group ------------------------------------------------------------------


def test_help_lists_enrolkit_commands_only(run):
    shown = ok(run("--help"))
    assert "  serve " in shown and "  enrolment " in shown
    for flask_own in ("--app", "--debug", "  routes ", "  run ", "  shell ", "--env-file"):
        assert flask_own not in shown, flask_own


# --- 3. tables a person reads: dates, names, no reprs ----------------------------------------

NOW = "2026-09-01T08:00:00Z"
HEADER = "operation,username,course,role,timestart,timeend\n"


@pytest.fixture
def small_site(run, tmp_path):
    """Three users, course C1 and cohort co1 holding ann and bob, at a pinned time."""
    (tmp_path / "users.csv").write_text(
        "username,email,firstname,lastname\n"
        "ann,ann@example.org,Ann,A\nbob,bob@example.org,Bob,B\ncy,cy@example.org,Cy,C\n"
    )
    (tmp_path / "courses.csv").write_text("shortname,fullname\nC1,Course one\n")
    (tmp_path / "cohorts.csv").write_text("idnumber,name\nco1,Cohort one\n")
    env = {"ENROLKIT_NOW": NOW}
    ok(run("db", "upgrade"))
    ok(run("user", "import", str(tmp_path / "users.csv"), env=env))
    ok(run("course", "import", str(tmp_path / "courses.csv"), env=env))
    ok(run("cohort", "import", str(tmp_path / "cohorts.csv"), env=env))
    ok(run("cohort", "add", "co1", "ann", "bob", env=env))
    return env


REPRS = ("True", "False", "None", "{", "[", "'")


def test_tables_show_dates_and_names_json_keeps_seconds_and_ids(run, small_site):
    env = small_site
    ok(run("enrolment", "add", "ann", "C1", "--end", "2027-06-30T12:00:00Z", env=env))
    table = ok(run("enrolment", "list", "C1", env=env)).splitlines()
    assert table[0].split() == [
        "username", "method", "instance", "roles", "status",
        "timestart", "timeend", "timecreated", "groups",
    ]  # fmt: skip
    assert table[1].split() == [
        "ann", "manual", "Manual", "enrolments", "student", "active",
        "—", "2027-06-30", "12:00", "2026-09-01", "08:00",
    ]  # fmt: skip
    [row] = json.loads(ok(run("enrolment", "list", "C1", "--json", env=env)))
    assert isinstance(row["instance"], int)
    assert (row["timestart"], row["timeend"]) == (0, 1_814_356_800)
    assert row["timecreated"] == 1_788_249_600

    ok(run("course", "complete", "ann", "C1", "--time", "2026-06-30T12:00:00Z", env=env))
    assert ok(run("completion", "list", "C1")).splitlines()[1].split() == [
        "ann", "2026-06-30", "12:00",
    ]  # fmt: skip

    logged = ok(run("log", "--course", "C1", "--event", "user_enrolled", env=env)).splitlines()
    assert logged[1].startswith("2026-09-01 08:00  user_enrolled")
    assert "Manual enrolments" in logged[1]


def test_method_instance_and_plan_tables_hold_no_python_reprs(run, small_site, tmp_path):
    env = small_site
    many = [f"u{i:02d}" for i in range(12)]
    (tmp_path / "many.csv").write_text(
        "username,email,firstname,lastname\n"
        + "".join(f"{u},{u}@example.org,U,{u}\n" for u in many)
    )
    ok(run("user", "import", str(tmp_path / "many.csv"), env=env))
    ok(run("cohort", "add", "co1", *many, env=env))
    ok(run("method", "enable", "cohort", env=env))
    ok(run("instance", "add", "C1", "cohort", "cohort=co1", env=env))
    # Emptying the cohort would unenrol everyone: the guard holds that plan for an admin.
    ok(run("cohort", "remove", "co1", "ann", "bob", *many, env=env))
    for args in (("method", "list"), ("instance", "list", "C1"), ("plan", "list")):
        table = ok(run(*args, env=env))
        body = "\n".join(table.splitlines()[1:])
        assert body and not [r for r in REPRS if r in body], (args, table)
    methods = ok(run("method", "list", env=env))
    assert "cohort" in methods and "removal=unenrol" in methods and " yes " in methods
    plans = ok(run("plan", "list", env=env)).splitlines()
    assert plans[0].split()[:5] == ["id", "status", "course", "method", "instance_name"]
    assert plans[1].split()[1:4] == ["held", "C1", "cohort"] and "2026-09-01 08:00" in plans[1]
    assert json.loads(ok(run("plan", "list", "--json", env=env)))[0]["created"] == 1_788_249_600


# --- 4 and 5. a fresh site's first cron; the flat file's drop folder ----------------------------


def test_the_first_cron_runs_every_task_and_applies_a_file_dropped_before_it(run, small_site):
    env = small_site
    ok(run("method", "enable", "flatfile", env=env))
    folder = run.home / "flatfile"
    assert folder.is_dir() and folder.stat().st_mode & 0o777 == 0o700
    (folder / "enrol.csv").write_text(HEADER + "add,cy,C1,student,,\n")
    tasks = [row["name"] for row in json.loads(ok(run("task", "list", "--json", env=env)))]
    first = ok(run("cron", env=env))
    assert "no task due" not in first
    assert {line.split(":")[0] for line in first.splitlines()} >= set(tasks)
    assert (folder / "enrol.csv.done").exists()
    assert [r["username"] for r in json.loads(ok(run("enrolment", "list", "C1", "--json")))] == [
        "cy"
    ]
    assert ok(run("cron", env=env)) == "no task due\n"  # the same minute: everything ran


def test_enabling_the_flat_file_where_its_folder_cannot_be_made_changes_nothing(run, tmp_path):
    ok(run("db", "upgrade"))
    run.home.mkdir(parents=True, exist_ok=True)
    blocker = run.home / "a-file"  # inside the home, where the folder may be
    blocker.write_text("")
    ok(run("method", "set", "flatfile", f"folder={blocker / 'drop'}"))
    refused = run("method", "enable", "flatfile")
    assert refused.returncode == 1
    assert refused.stderr.startswith("enrolkit: error: invalid site settings of flatfile: folder:")
    assert "enrolkit method set flatfile folder=PATH" in refused.stderr
    [row] = [r for r in json.loads(ok(run("method", "list", "--json"))) if r["name"] == "flatfile"]
    assert row["enabled"] is False


# --- 6. flatfile process: exit status 2 for rejected lines -----------------------------------


def test_flatfile_process_exits_2_when_lines_were_rejected(run, small_site):
    env = small_site
    ok(run("method", "enable", "flatfile", env=env))
    (run.home / "flatfile" / "enrol.csv").write_text(
        HEADER + "add,ann,C1,student,,\nadd,zed,C1,student,,\n"
    )
    done = run("flatfile", "process", env=env)
    assert done.returncode == 2, done.stderr
    assert "1 applied" in done.stdout and "unknown user 'zed'" in done.stdout
    assert [r["username"] for r in json.loads(ok(run("enrolment", "list", "C1", "--json")))] == [
        "ann"
    ]
    (run.home / "flatfile" / "more.csv").write_text(HEADER + "add,bob,C1,student,,\n")
    assert run("flatfile", "process", env=env).returncode == 0


# --- 7. ids never reused ---------------------------------------------------------------------


def test_a_deleted_instance_id_is_never_given_again(run, small_site):
    env = small_site
    ok(run("method", "enable", "cohort", env=env))
    first = int(ok(run("instance", "add", "C1", "cohort", "cohort=co1", env=env)))
    ok(run("instance", "delete", str(first), env=env))
    second = int(ok(run("instance", "add", "C1", "cohort", "cohort=co1", env=env)))
    assert second > first
    logged = json.loads(ok(run("log", "--event", "user_enrolled", "--json", env=env)))
    assert sorted({row["instance"] for row in logged}) == [first, second]


def test_the_migration_keeps_every_row_and_stops_reusing_ids(any_db, tmp_path):
    """An existing database at the first revision, with rows that refer to the rebuilt tables,
    upgraded: nothing lost (no cascade), and on SQLite the tables now say AUTOINCREMENT."""
    from alembic import command
    from enrolkit import db
    from enrolkit.plugins import Plugins
    from enrolkit.runtime import Runtime

    runtime = Runtime(any_db, Plugins(entry_points=False))
    try:
        command.upgrade(db.alembic_config(runtime.db), "0001")
        with runtime.db.begin() as conn:
            for statement in (
                "INSERT INTO users (id, username, idnumber, email, firstname, lastname, auth,"
                " lang, department, institution, city, country, suspended, deleted, siteadmin,"
                " lastlogin, timecreated, timemodified) VALUES (7, 'ann', '', '', '', '',"
                " 'manual', 'en', '', '', '', '', false, false, false, 0, 0, 0)",
                "INSERT INTO courses (id, shortname, fullname, idnumber, startdate, enddate,"
                " enablecompletion, visible, timecreated)"
                " VALUES (3, 'C1', 'C', '', 0, 0, false, true, 0)",
                "INSERT INTO enrol_instances (id, course_id, method, enabled, name, sortorder,"
                " settings, timecreated, timemodified)"
                " VALUES (5, 3, 'manual', true, '', 0, '{}', 0, 0)",
                "INSERT INTO user_enrolments (instance_id, user_id, status, timestart, timeend,"
                " timecreated, timemodified) VALUES (5, 7, 0, 0, 0, 0, 0)",
            ):
                conn.exec_driver_sql(statement)
        runtime.upgrade()
        with runtime.db.connect() as conn:
            assert conn.exec_driver_sql(
                "SELECT instance_id, user_id FROM user_enrolments"
            ).all() == [(5, 7)]
            if conn.dialect.name == "sqlite":
                made = conn.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE name = 'enrol_instances'"
                ).scalar()
                assert "AUTOINCREMENT" in made
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    finally:
        runtime.dispose()
