"""The core's tests use the fixtures of ``enrolkit.testing`` (a pytest11 plugin), the same ones
plugin authors get: ``site``, ``db_site`` (SQLite and PostgreSQL), ``cli``, ``clock``, ...

Here: the test plugin with slow and quick tasks, installed for subprocesses (the task tests and
the lock tests of ``tests/security``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN_SOURCE = Path(__file__).parent / "plugins" / "ektest_tasks"

#: Plugin distributions that tests install and test in a process of their own (test_kit.py).
collect_ignore = ["fixtures"]


@pytest.fixture(scope="session")
def ektest_tasks_path(tmp_path_factory) -> str:
    """The test plugin installed into a folder of its own, for subprocesses' PYTHONPATH (entry
    points are found from sys.path). Built from a copy so the source tree stays clean."""
    base = tmp_path_factory.mktemp("ektest_tasks")
    source = base / "src"
    shutil.copytree(PLUGIN_SOURCE, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    target = base / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--disable-pip-version-check",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=180,
    )
    return str(target)
