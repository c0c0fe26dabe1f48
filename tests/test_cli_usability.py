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


def imported(result: subprocess.CompletedProcess) -> set[str]:
    """The top-level packages a run imported (``PYTHONPROFILEIMPORTTIME`` on stderr)."""
    names = set()
    for line in result.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return names


# --- 1. speed: nothing loaded that the command does not use ----------------------------------


def test_help_and_a_listing_load_only_what_they_use(run):
    profile = {"PYTHONPROFILEIMPORTTIME": "1"}
    shown = run("--help", env=profile)
    assert shown.returncode == 0
    assert not imported(shown) & {
        "sqlalchemy", "flask", "flask_smorest", "alembic", "marshmallow", "waitress", "jinja2",
    }  # fmt: skip
    ok(run("db", "upgrade"))
    ok(run("demo"))
    listed = run("enrolment", "list", "MATH101", "--json", env=profile)
    assert listed.returncode == 0
    assert [row["username"] for row in json.loads(listed.stdout)] == ["prof.martin"]
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
