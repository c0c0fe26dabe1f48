"""The pytest fixtures of ``enrolkit.testing`` as a plugin author meets them: a plugin's test site
has the plugin on both backends, a command's writes are visible to the test that ran it, every
fixture says what it gives in ``pytest --fixtures``, and the hook examples of docs/hooks.md run
as written."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import pytest
from enrolkit.testing import run_cli
from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = ROOT / "tests" / "plugins"


def load_module(path: Path, name: str):
    """A plugin module from a file, as a test passes it in ``enrolkit_plugins``."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def enrolkit_plugins():
    """The core and the test plugin ``ektest`` only."""
    return (load_module(PLUGINS / "ektest_plugin" / "ektest_plugin.py", "ektest_kit_plugin"),)


def test_db_site_has_the_plugins_of_enrolkit_plugins(db_site):
    assert "ektest" in db_site.plugins.methods
    with db_site.atomic():
        course = db_site.course("C1")
        db_site.users(2)
    instance = db_site.instance(course, "ektest")
    assert instance.method == "ektest"
    assert "autoenrol" not in db_site.plugins.methods  # exactly the plugins asked for


def test_a_command_sees_the_tests_writes_and_the_test_sees_the_commands(site, cli):
    from enrolkit.models import User

    ann = site.user("ann", department="Sales")  # flushed, not committed
    assert ann.department == "Sales"
    done = cli("user", "set", "ann", "department=IT")
    assert done.exit_code == 0, done.output
    assert ann.department == "IT"
    assert site.session.scalar(select(User.department).where(User.username == "ann")) == "IT"


def test_every_fixture_has_a_docstring(tmp_path):
    """``pytest --fixtures`` in a project of a plugin author: no fixture of enrolkit.testing
    shows "no docstring available"."""
    (tmp_path / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    shown = subprocess.run(
        [sys.executable, "-m", "pytest", "--fixtures", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stdout + shown.stderr
    section = shown.stdout.split("fixtures defined from enrolkit.testing", 1)[1]
    section = re.split(r"^-+ fixtures defined from ", section, flags=re.M)[0]
    from enrolkit import testing

    fixtures = [name for name in testing.__all__ if re.search(rf"^{name}\b", section, re.M)]
    assert {"site", "db_site", "any_db", "cli", "client", "outbox", "clock", "make_runtime"} <= set(
        fixtures
    )
    assert "no docstring available" not in section, section


# --- docs/hooks.md's register_commands example, run as written -----------------------------------

HOOKS_MD = ROOT / "docs" / "hooks.md"


def register_commands_example() -> str:
    section = HOOKS_MD.read_text(encoding="utf-8").split("### register_commands\n", 1)[1]
    section = section.split("\n### ", 1)[0]
    return re.search(r"\*\*Example:\*\*\n\n```python\n(?P<code>.*?)```", section, re.S)["code"]


def test_hook_register_commands_example_runs_as_written(tmp_path, make_runtime):
    module_path = tmp_path / "ektest_example.py"
    module_path.write_text(register_commands_example(), encoding="utf-8")
    plugin = load_module(module_path, "ektest_example")
    runtime = make_runtime(plugins=(plugin,))
    with runtime.site() as site, site.atomic():
        from enrolkit.testing import SiteFactory

        SiteFactory(site).users(3)
    assert "ektest" in run_cli(runtime, "--help").output
    ran = run_cli(runtime, "ektest", "users")
    assert (ran.exit_code, ran.output) == (0, "3\n")


def test_the_installed_test_plugin_carries_the_example_verbatim():
    """tests/test_plugins.py runs the example installed, through the real ``enrolkit``: its copy in
    ektest_plugin.py must be the documented text."""
    source = (PLUGINS / "ektest_plugin" / "ektest_plugin.py").read_text(encoding="utf-8")
    body = register_commands_example().split("\n\n\n", 1)[1]  # after the imports
    assert body in source
