"""Issue 18: a plain install pointed at PostgreSQL answered "internal error: ModuleNotFoundError:
No module named 'psycopg' (this is a bug …)". The driver is the ``postgres`` extra; without it
every command says, in one line, what to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

#: Runs the real CLI in a Python where ``import psycopg`` fails, as on a plain install.
WITHOUT_PSYCOPG = (
    "import sys; sys.modules['psycopg'] = None; "
    "from enrolkit.cli import main; sys.argv = ['enrolkit', *sys.argv[1:]]; main()"
)


@pytest.mark.parametrize("command", [["log"], ["db", "upgrade"], ["serve"]])
def test_postgresql_without_its_driver_says_which_extra_to_install(command, tmp_path):
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_PSYCOPG, *command],
        env={
            "PATH": "/usr/bin:/bin",
            "ENROLKIT_HOME": str(tmp_path),
            "ENROLKIT_DATABASE_URL": "postgresql://enrolkit@db.example.org/enrolkit",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "enrolkit: error: PostgreSQL needs the driver psycopg, which is not installed: "
        "pip install 'enrolkit[postgres]'\n"
    )
    assert result.stdout == ""
