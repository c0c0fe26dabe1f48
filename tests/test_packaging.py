"""A non-editable install (``pip install . plugins/enrol_*``) carries its data files and works:
the schema upgrades from the packaged migrations, every plugin loads, the demo site loads."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tracked_copy(destination: Path) -> Path:
    """The committed-or-staged files of the repository (no build/ or egg-info leftovers)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    for name in listed:
        source = ROOT / name
        if source.is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return destination


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    source = _tracked_copy(tmp_path_factory.mktemp("source"))
    wheels = tmp_path_factory.mktemp("wheels")
    projects = [str(source)] + sorted(
        str(p.parent) for p in source.glob("plugins/*/pyproject.toml")
    )
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            *projects,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    # the plugins' folders (migrations, translations) are packaged, so setuptools warns of none
    assert "absent from the `packages` configuration" not in built.stderr
    assert "absent from the `packages` configuration" not in built.stdout
    target = tmp_path_factory.mktemp("target")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--no-index",
            "-q",
            "--target",
            str(target),
            *map(str, wheels.glob("*.whl")),
        ],
        check=True,
        capture_output=True,
    )
    return wheels, target


def test_core_wheel_contains_migrations_and_templates(installed):
    wheels, _ = installed
    wheel = next(wheels.glob("enrolkit-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "enrolkit/migrations/env.py" in names
    assert "enrolkit/migrations/script.py.mako" in names
    assert any(n.startswith("enrolkit/migrations/versions/0001_") for n in names)
    assert "enrolkit/web/templates/base.html" in names
    assert "enrolkit/web/static/style.css" in names
    assert "enrolkit/web/translations/fr/LC_MESSAGES/messages.mo" in names
    assert not any(n.startswith("tests/") for n in names)


def test_the_installed_copy_upgrades_loads_every_plugin_and_the_demo(installed, tmp_path):
    _, target = installed
    env = {**os.environ, "PYTHONPATH": str(target), "ENROLKIT_HOME": str(tmp_path / "home")}
    env.pop("ENROLKIT_DATABASE_URL", None)

    def enrolkit(*args: str) -> str:
        code = "import sys, enrolkit.cli as c; sys.argv[0] = 'enrolkit'; c.main()"
        done = subprocess.run(
            [sys.executable, "-c", code, *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    where = subprocess.run(
        [sys.executable, "-c", "import enrolkit; print(enrolkit.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert where.startswith(str(target)), where
    enrolkit("db", "upgrade")
    enrolkit("demo")
    plugins = {p["name"]: p for p in json.loads(enrolkit("plugin", "list", "--json"))}
    for name in ("flatfile", "cohort", "meta", "category", "autoenrol", "completion", "self"):
        assert plugins[name]["distribution"] == f"enrol_{name}", plugins
    methods = {m["name"] for m in json.loads(enrolkit("method", "list", "--json"))}
    assert {
        "manual",
        "flatfile",
        "cohort",
        "meta",
        "category",
        "autoenrol",
        "completion",
        "self",
    } <= methods
