"""The kit for authors of new methods, end to end: ``enrolkit plugin new`` scaffolds a method of
each kind it offers into a temporary folder, and so does the walk-through of
docs/writing-a-method.md (its file blocks written over a scaffold); with the plugin written
against last month's API (tests/fixtures/enrol_lastmonth) they are pip-installed from there, their
own tests pass in a fresh pytest process with the ``enrolkit.testing`` fixtures, and ``enrolkit
plugin list`` shows them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from enrolkit import scaffolding

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "writing-a-method.md"
ENROLKIT = Path(sys.executable).with_name("enrolkit")
#: A fenced block whose first line is a comment naming the file it holds.
FILE_BLOCK = re.compile(
    r"^```\w+\n(?P<head>(?:# |\{# )(?P<path>[\w./]+)(?: #\})?)\n(?P<body>.*?)^```", re.M | re.S
)


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without enrolkit's settings (the test database server
    stays: the plugins' tests use it)."""
    kept = ("ENROLKIT_TEST_POSTGRES_URL",)
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ENROLKIT_") or k in kept}
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


#: Last month's scaffold, frozen (tests/fixtures/README.md): the old documented API must still work.
LAST_MONTH = ROOT / "tests" / "fixtures" / "enrol_lastmonth"


def test_the_frozen_plugin_is_last_months_scaffold():
    """enrol_lastmonth is what ``plugin new`` made before issue 17 and must stay so: its method
    and welcome still use the names documented then."""
    method = (LAST_MONTH / "enrol_lastmonth" / "method.py").read_text()
    welcome = (LAST_MONTH / "enrol_lastmonth" / "welcome.py").read_text()
    assert "class LastmonthMethod(EnrolMethod)" in method
    assert "templating.render_welcome(" in welcome
    assert 'f"welcome:enrol_{NAME}:{instance_id}:{user_id}"' in welcome


@pytest.mark.slow
def test_every_kind_the_guide_and_last_months_plugin_install_pass_their_tests_and_are_listed(
    tmp_path,
):
    """Each kind ``plugin new --kind`` offers, the guide's method and the frozen plugin of last
    month: installed from their folders, their own tests pass in a fresh pytest process (on
    PostgreSQL too, for the kinds, when ENROLKIT_TEST_POSTGRES_URL is set), and ``enrolkit
    plugin list`` shows them."""
    home, src, site = tmp_path / "home", tmp_path / "src", tmp_path / "site"
    env = environment(ENROLKIT_HOME=str(home))
    kinds = list(scaffolding.kinds())
    assert {"sync", "event"} <= set(kinds)
    names = {f"k{kind}": kind for kind in kinds}
    for name, kind in names.items():
        made = run(ENROLKIT, "plugin", "new", name, "--kind", kind, "--dir", src, env=env,
                   timeout=60)  # fmt: skip
        assert f"enrol_{name}/pyproject.toml" in made.stdout
    run(ENROLKIT, "plugin", "new", "emaildomain", "--dir", src, env=env, timeout=60)
    for path, content in guide_files().items():
        (src / "enrol_emaildomain" / path).write_text(content)
    shutil.copytree(LAST_MONTH, src / "enrol_lastmonth")
    names.update(emaildomain="guide", lastmonth="last month's API")

    dists = [src / f"enrol_{name}" for name in names]
    run(sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
        "--no-index", "--no-cache-dir", "--disable-pip-version-check", "--quiet",
        "--target", site, *dists, timeout=300)  # fmt: skip

    installed = environment(ENROLKIT_HOME=str(home), PYTHONPATH=str(site))
    tests = run(
        sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "-W", "error",
        *(dist / "tests" for dist in dists), env=installed, cwd=tmp_path, timeout=900,
    )  # fmt: skip
    assert " FAILED" not in tests.stdout and " SKIPPED" not in tests.stdout, tests.stdout
    passed = re.findall(r"\btest_(\w+)\.py::(\S+) PASSED", tests.stdout)
    for name in names:
        assert any(dist == name for dist, _ in passed), (
            f"no test of enrol_{name} passed:\n{tests.stdout}"
        )
    if os.environ.get("ENROLKIT_TEST_POSTGRES_URL"):
        for name in (f"k{kind}" for kind in kinds):
            assert any(d == name and "[postgresql]" in t for d, t in passed), (name, tests.stdout)

    listed = run(ENROLKIT, "plugin", "list", "--json", env=installed, timeout=60)
    plugins = {row["name"]: row for row in json.loads(listed.stdout)}
    for name in names:
        row = plugins[name]
        assert (row["distribution"], row["version"]) == (f"enrol_{name}", "0.1.0")
        assert {"register_methods", "enrolments_changed", "render_settings"} <= set(row["hooks"])


def test_each_kind_is_offered_by_the_command_with_its_description(cli):
    shown = cli("plugin", "new", "--help").output
    for kind, about in scaffolding.kinds().items():
        assert re.search(rf"^  {kind} +{re.escape(about.split()[0])}", shown, re.M), shown


def test_an_unknown_kind_is_refused_in_one_line(cli, tmp_path):
    refused = cli("plugin", "new", "grades", "--kind", "magic", "--dir", str(tmp_path))
    assert refused.exit_code == 1
    assert "'magic' is not a kind of method; choose one of" in refused.output
    assert "event" in refused.output and "sync" in refused.output
    assert not (tmp_path / "enrol_grades").exists()


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
