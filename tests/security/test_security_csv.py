"""Issue 12, Medium 4 and the Low line "a 10 MB CSV field": CSV the project writes for people
never runs a formula in their spreadsheet, and a CSV field too long to read is a rejected row
with its line number, not a crash (exit 70)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from enrolkit import csvfile
from enrolkit.models import User
from sqlalchemy import create_engine, select

ENROLKIT = str(Path(sys.executable).with_name("enrolkit"))


@pytest.mark.parametrize(
    "cell",
    ["=cmd|' /C calc'!A0", "+41 22 000", "-1+1", "@SUM(A1)", "\t=1+1", "\r=1+1", "'=1"],
)
def test_cells_a_spreadsheet_would_run_are_written_as_text(cell):
    out = io.StringIO()
    csvfile.SafeWriter(out).writerow((7, cell, "plain"))
    [written] = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert written == ["7", "'" + cell, "plain"]
    assert csvfile.restore(written[1]) == cell


def test_harmless_cells_and_numbers_are_left_as_they_are():
    out = io.StringIO()
    csvfile.SafeWriter(out).writerows([("line", "reason"), (-3, "unknown user 'a=b'"), (2, "")])
    assert out.getvalue() == "line,reason\r\n-3,unknown user 'a=b'\r\n2,\r\n"


def test_the_project_writes_csv_only_through_the_safe_writer():
    """One way to write CSV for people: a plain ``csv.writer`` anywhere else is a hole."""
    roots = [Path(csvfile.__file__).parents[1], Path(csvfile.__file__).parents[2] / "plugins"]
    offenders = []
    for root in roots:
        for path in root.rglob("*.py"):
            if "tests" in path.parts or path.name == "csvfile.py" or ".venv" in path.parts:
                continue
            text = path.read_text(encoding="utf-8")
            if "csv.writer(" in text or "csv.DictWriter(" in text:
                offenders.append(str(path))
    assert offenders == []


@pytest.fixture
def run(any_db, tmp_path):
    """The real ``enrolkit`` on a fresh database of each backend."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENROLKIT_")}
    env.update(ENROLKIT_HOME=str(tmp_path / "home"), ENROLKIT_DATABASE_URL=any_db)

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [ENROLKIT, *args], env=env, capture_output=True, text=True, timeout=120
        )

    assert run("db", "upgrade").returncode == 0
    return run


def _usernames(url: str) -> list[str]:
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.connect() as conn:
        names = sorted(conn.scalars(select(User.username)))
    engine.dispose()
    return names


def test_a_10_mb_field_is_a_rejected_row_not_an_internal_error(run, any_db, tmp_path):
    huge = "z" * (10 * 1024 * 1024)
    path = tmp_path / "users.csv"
    path.write_text(
        "username,email,firstname,lastname\n"
        "ann,ann@example.org,Ann,Lee\n"
        f"bob,bob@example.org,{huge},Bob\n"
        "cy,cy@example.org,Cy,Twombly\n"
    )
    result = run("user", "import", str(path))
    assert result.returncode == 2, result.stderr[-300:]
    assert "users.csv:3: a field is longer than 131,072 characters" in result.stderr
    assert len(result.stderr) < 1000 and "Traceback" not in result.stderr
    assert _usernames(any_db) == ["ann", "cy"]
    strict = run("user", "import", "--strict", str(path))
    assert strict.returncode != 0 and strict.returncode != 70
