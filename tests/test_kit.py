"""The kit for authors of new methods, end to end: ``enrolkit plugin new`` scaffolds a method into
a temporary folder, and so does the walk-through of docs/writing-a-method.md (its file blocks
written over a scaffold); both are pip-installed from there, their own tests pass in a fresh
pytest process with the ``enrolkit.testing`` fixtures, and ``enrolkit plugin list`` shows them.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "writing-a-method.md"
ENROLKIT = Path(sys.executable).with_name("enrolkit")
#: A fenced block whose first line is a comment naming the file it holds.
FILE_BLOCK = re.compile(
    r"^```\w+\n(?P<head>(?:# |\{# )(?P<path>[\w./]+)(?: #\})?)\n(?P<body>.*?)^```", re.M | re.S
)


def environment(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ENROLKIT_")}
    return {**clean, **extra}


def run(*args, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{args[:3]} failed:\n{done.stdout}\n{done.stderr}"
    return done


def guide_files() -> dict[str, str]:
    """Relative path -> content, for each file block of the guide."""
    return {m["path"]: f"{m['head']}\n{m['body']}" for m in FILE_BLOCK.finditer(GUIDE.read_text())}


def test_the_guide_shows_every_file_it_changes():
    assert set(guide_files()) == {
        "pyproject.toml",
        "enrol_emaildomain/schemas.py",
        "enrol_emaildomain/method.py",
        "enrol_emaildomain/__init__.py",
        "enrol_emaildomain/templates/enrol_emaildomain/settings.html",
        "tests/test_emaildomain.py",
    }


@pytest.mark.slow
def test_scaffolded_and_documented_methods_install_pass_their_tests_and_are_listed(tmp_path):
    home, src, site = tmp_path / "home", tmp_path / "src", tmp_path / "site"
    env = environment(ENROLKIT_HOME=str(home))
    for name in ("demo", "emaildomain"):
        made = run(ENROLKIT, "plugin", "new", name, "--dir", src, env=env, timeout=60)
        assert f"enrol_{name}/pyproject.toml" in made.stdout
    for path, content in guide_files().items():
        (src / "enrol_emaildomain" / path).write_text(content)

    run(sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
        "--no-index", "--no-cache-dir", "--disable-pip-version-check", "--quiet",
        "--target", site, src / "enrol_demo", src / "enrol_emaildomain", timeout=180)  # fmt: skip

    installed = environment(ENROLKIT_HOME=str(home), PYTHONPATH=str(site))
    tests = run(
        sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error",
        src / "enrol_demo" / "tests", src / "enrol_emaildomain" / "tests",
        env=installed, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert re.search(r"\b(\d+) passed\b", tests.stdout), tests.stdout
    assert " failed" not in tests.stdout and "skipped" not in tests.stdout, tests.stdout

    listed = run(ENROLKIT, "plugin", "list", "--json", env=installed, timeout=60)
    plugins = {row["name"]: row for row in json.loads(listed.stdout)}
    for name in ("demo", "emaildomain"):
        row = plugins[name]
        assert (row["distribution"], row["version"]) == (f"enrol_{name}", "0.1.0")
        assert {"register_methods", "register_tasks", "on_login", "render_settings"} <= set(
            row["hooks"]
        )


def test_the_scaffold_refuses_a_bad_name_or_an_existing_folder(cli, tmp_path):
    bad = cli("plugin", "new", "Email-Domain", "--dir", str(tmp_path))
    assert bad.exit_code == 1 and "not a method name" in bad.output
    assert cli("plugin", "new", "class", "--dir", str(tmp_path)).exit_code == 1
    made = cli("plugin", "new", "grades", "--dir", str(tmp_path))
    assert made.exit_code == 0, made.output
    project = (tmp_path / "enrol_grades" / "pyproject.toml").read_text()
    assert '[project.entry-points.enrolkit]\ngrades = "enrol_grades"' in project
    assert (
        "class GradesMethod(EnrolMethod)"
        in (tmp_path / "enrol_grades" / "enrol_grades" / "method.py").read_text()
    )
    again = cli("plugin", "new", "grades", "--dir", str(tmp_path))
    assert again.exit_code == 1 and "exists" in again.output
