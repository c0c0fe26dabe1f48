"""The plugin system, end to end: real distributions installed with pip and loaded by the real
``enrolkit`` command through the ``enrolkit`` entry-point group; the manager's order, blocking and
typed facade; and the hooks the core fires, each seen by a plugin.

The two distributions live in tests/plugins/: ``ektest_plugin`` (method ``ektest``, records the
hooks it receives in the file named by ``EKTEST_LOG``) and ``ektest_badhook`` (a misspelt hook).
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from enrolkit import (
    CourseAccess,
    EnrolMethod,
    access,
    catalog,
    cohorts,
    hookimpl,
    hookspecs,
    lookup,
    people,
)
from enrolkit.models import Cohort, CohortMember
from enrolkit.plugins import DEFAULT_PLUGINS, PluginError, Plugins
from enrolkit.testing import SiteFactory
from sqlalchemy import func, select

HERE = Path(__file__).resolve().parent
ENROLKIT = Path(sys.executable).with_name("enrolkit")
BUILTINS = [module.rsplit(".", 1)[-1] for module in DEFAULT_PLUGINS]
GOOD, BAD = "ektest_plugin", "ektest_badhook"


# --- installing the test distributions, once per session -------------------------------------


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> dict[str, Path]:
    """Each test distribution pip-installed into its own ``--target`` folder (built from a copy,
    so the build leaves nothing behind in the source tree)."""
    root = tmp_path_factory.mktemp("plugin-dists")
    targets = {}
    for name in (GOOD, BAD):
        source = shutil.copytree(
            HERE / "plugins" / name,
            root / "src" / name,
            ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"),
        )
        target = root / "site" / name
        done = subprocess.run(
            [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation",
             "--no-index", "--no-cache-dir", "--disable-pip-version-check", "--quiet",
             "--target", str(target), str(source)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, f"pip install {name} failed:\n{done.stderr}"
        targets[name] = target
    return targets


def run_enrolkit(
    *args: str, paths: list[Path], home: Path, **env: str
) -> subprocess.CompletedProcess:
    """The installed ``enrolkit`` command in a fresh process that sees the given plugin folders."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ENROLKIT_")}
    clean.update(PYTHONPATH=os.pathsep.join(map(str, paths)), ENROLKIT_HOME=str(home), **env)
    return subprocess.run(
        [str(ENROLKIT), *args], capture_output=True, text=True, env=clean, timeout=60
    )


@pytest.fixture
def ektest_log(installed, monkeypatch, tmp_path) -> Iterator[Path]:
    """The good plugin importable in this process, recording into a fresh log file."""
    log = tmp_path / "ektest.log"
    monkeypatch.setenv("EKTEST_LOG", str(log))
    monkeypatch.syspath_prepend(str(installed[GOOD]))
    yield log
    sys.modules.pop(GOOD, None)


def logged(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


# --- the real command with real distributions ------------------------------------------------


def test_plugin_list_shows_the_installed_distribution(installed, tmp_path):
    log = tmp_path / "ektest.log"
    done = run_enrolkit(
        "plugin", "list", "--json", paths=[installed[GOOD]], home=tmp_path, EKTEST_LOG=str(log)
    )
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert {"name": "ektest", "distribution": "ektest-plugin", "version": "0.3.1",
            "hooks": ["enrolments_changed", "on_cron", "register_commands",
                      "register_methods"]} in rows  # fmt: skip
    assert all(r["distribution"] == "enrolkit" for r in rows[: len(BUILTINS)])
    assert {r["name"] for r in rows} >= set(BUILTINS)
    # Loading the plugins called its register_methods in that process; nothing was traced.
    assert logged(log) == ["register_methods"]
    assert "[enrolkit hook]" not in done.stderr


def test_hook_register_commands_example_works_as_written(installed, tmp_path):
    """docs/hooks.md's example (a plain click group whose command opens a site), installed in
    a real distribution: listed by --help and run by the real command, no Flask involved."""
    (tmp_path / "users.csv").write_text(
        "username,email,firstname,lastname\nann,ann@example.org,Ann,A\nbob,bob@example.org,Bob,B\n"
    )

    def cli(*args: str) -> subprocess.CompletedProcess:
        return run_enrolkit(*args, paths=[installed[GOOD]], home=tmp_path)

    assert "  ektest " in cli("--help").stdout
    assert cli("db", "upgrade").returncode == 0
    assert cli("user", "import", str(tmp_path / "users.csv")).returncode == 0
    ran = cli("ektest", "users")
    assert (ran.returncode, ran.stdout, ran.stderr) == (0, "2\n", "")


def test_hook_enrolments_changed_in_an_installed_plugin(installed, tmp_path):
    """The method the distribution registers is usable from the command line, and the change
    hook of that distribution fires when the engine applies the method's plan."""
    log = tmp_path / "ektest.log"
    (tmp_path / "users.csv").write_text(
        "username,email,firstname,lastname\nann,ann@example.org,Ann,A\nbob,bob@example.org,Bob,B\n"
    )
    (tmp_path / "courses.csv").write_text("shortname,fullname\nC1,Course one\n")

    def cli(*args: str) -> str:
        done = run_enrolkit(*args, paths=[installed[GOOD]], home=tmp_path, EKTEST_LOG=str(log))
        assert done.returncode == 0, f"enrolkit {' '.join(args)}: {done.stderr}"
        return done.stdout

    cli("db", "upgrade")
    cli("user", "import", str(tmp_path / "users.csv"))
    cli("course", "import", str(tmp_path / "courses.csv"))
    cli("method", "enable", "ektest")
    cli("instance", "add", "C1", "ektest")
    rows = json.loads(cli("enrolment", "list", "C1", "--json"))
    assert sorted((r["username"], r["method"]) for r in rows) == [
        ("ann", "ektest"),
        ("bob", "ektest"),
    ]
    assert "enrolments_changed ektest enrolled=2" in logged(log)


def test_trace_hooks_prints_each_hook_call_on_stderr(installed, tmp_path):
    done = run_enrolkit(
        "plugin", "list", "--json", paths=[installed[GOOD]], home=tmp_path,
        ENROLKIT_TRACE_HOOKS="1",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "[enrolkit hook] register_methods(register=" in done.stderr
    assert "[enrolkit hook] register_methods done" in done.stderr
    assert "[enrolkit hook] register_tasks(" in done.stderr
    json.loads(done.stdout)  # the trace never mixes into the output


@pytest.mark.parametrize("args", [("plugin", "list"), ("--help",)], ids=["command", "help"])
def test_a_misspelt_hook_stops_startup_with_one_line(installed, tmp_path, args):
    done = run_enrolkit(*args, paths=[installed[BAD], installed[GOOD]], home=tmp_path)
    assert done.returncode != 0
    assert "on_logn" in done.stderr
    assert "ENROLKIT_DISABLE_PLUGINS=ektest_bad" in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_disabling_the_broken_plugin_by_entry_point_name_lets_startup_succeed(installed, tmp_path):
    done = run_enrolkit(
        "plugin", "list", "--json", paths=[installed[BAD], installed[GOOD]], home=tmp_path,
        ENROLKIT_DISABLE_PLUGINS="ektest_bad",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    names = {row["name"] for row in json.loads(done.stdout)}
    assert "ektest" in names
    assert "ektest_bad" not in names


# --- the manager in this process ----------------------------------------------------------


def test_builtins_register_first_and_installed_plugins_are_called_first(ektest_log):
    plugins = Plugins(disable=(), trace=False)
    names = [name for name, _ in plugins.pm.list_name_plugin()]
    assert names[: len(BUILTINS)] == BUILTINS
    assert "ektest" in names[len(BUILTINS) :]
    # pluggy calls the latest registration first: the entry point's register_methods ran first.
    assert list(plugins.methods).index("ektest") < list(plugins.methods).index("manual")
    info = {p.name: p for p in plugins.list()}["ektest"]
    assert (info.distribution, info.version) == ("ektest-plugin", "0.3.1")


def test_installed_plugin_receives_only_the_arguments_it_asks_for(ektest_log, make_runtime):
    runtime = make_runtime(entry_points=True)
    with runtime.site(origin="cron") as site:
        runtime.plugins.on_cron(site=site, now=1_790_000_000)
    assert "on_cron 1790000000" in logged(ektest_log)


def test_disabled_plugins_are_not_loaded_builtins_included(ektest_log):
    plugins = Plugins(disable=("ektest", "manual"), trace=False)
    assert "ektest" not in plugins.methods
    assert "manual" not in plugins.methods
    assert plugins.disabled == ("ektest", "manual")


def test_disable_is_read_from_the_environment(ektest_log, monkeypatch):
    monkeypatch.setenv("ENROLKIT_DISABLE_PLUGINS", " ektest , ")
    assert "ektest" not in Plugins(trace=False).methods


class Impostor(EnrolMethod):
    name = "manual"


class ImpostorPlugin:
    @hookimpl
    def register_methods(self, register):
        register(Impostor())


def test_hook_register_methods_refuses_a_taken_method_name():
    # Methods are collected on first use (start-up stays light); the web app and `plugin list`
    # collect them at once with load_all.
    plugins = Plugins(entry_points=False, extra=(ImpostorPlugin(),), trace=False)
    with pytest.raises(PluginError) as raised:
        plugins.load_all()
    message = str(raised.value)
    assert "'manual'" in message
    assert "enrolkit.builtin.manual_method.ManualMethod" in message
    assert f"{__name__}.Impostor" in message


def facade_hooks() -> list[str]:
    """Hooks the core calls at run time (the register_* hooks are called while loading)."""
    specs = [n for n, f in vars(hookspecs).items() if hasattr(f, "enrolkit_spec")]
    return [name for name in specs if not name.startswith("register_")]


@pytest.mark.parametrize("hook", facade_hooks())
def test_the_typed_facade_forwards_every_argument_by_keyword(hook):
    spec_args = list(inspect.signature(getattr(hookspecs, hook)).parameters)
    facade = getattr(Plugins, hook)
    params = list(inspect.signature(facade).parameters.values())[1:]
    assert [p.name for p in params] == spec_args
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params)

    plugins = Plugins(entry_points=False, disable=tuple(BUILTINS), trace=False)
    calls = []
    plugins.pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: calls.append((name, dict(kwargs))), lambda *a: None
    )
    sent = {arg: object() for arg in spec_args}
    getattr(plugins, hook)(**sent)
    assert calls == [(hook, sent)]


# --- the hooks the core fires, each seen by a plugin -------------------------------------------


class Recorder:
    """Records every call of the hooks the core fires for people's actions and changes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def seen(self, hook: str) -> list[dict]:
        return [kwargs for name, kwargs in self.calls if name == hook]

    @hookimpl
    def on_login(self, site, user):
        self.calls.append(("on_login", {"user": user.username, "lastlogin": user.lastlogin}))

    @hookimpl
    def on_course_view(self, user, course, enrolled):
        self.calls.append(("on_course_view", {"course": course.shortname, "enrolled": enrolled}))
        if course.shortname == "open":
            return CourseAccess("granted", "open day")
        if course.shortname == "closed":
            return CourseAccess("denied", "closed for repairs")
        return None

    @hookimpl
    def on_completion(self, user, course, timecompleted):
        self.calls.append(("on_completion", {"user": user.username, "time": timecompleted}))

    @hookimpl
    def cohort_members_changed(self, cohort_id, added, removed):
        self.calls.append(("cohort_members_changed", {"added": added, "removed": removed}))

    @hookimpl
    def cohort_deleted(self, site, cohort_id):
        members = site.session.scalar(
            select(func.count())
            .select_from(CohortMember)
            .where(CohortMember.cohort_id == cohort_id)
        )
        self.calls.append(("cohort_deleted", {"cohort_id": cohort_id, "members": members}))

    @hookimpl
    def profile_changed(self, change):
        self.calls.append(("profile_changed", {"users": change.user_ids, "fields": change.fields}))

    @hookimpl
    def courses_changed(self, course_ids):
        self.calls.append(("courses_changed", {"course_ids": course_ids}))


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def rsite(make_runtime, recorder, clock):
    runtime = make_runtime(plugins=(recorder,))
    with runtime.site() as site:
        yield SiteFactory(site)


def test_hook_on_login_fires_after_lastlogin_is_set(rsite, recorder, clock):
    ann = rsite.user("ann")
    rsite.session.commit()
    people.login(rsite.site, ann)
    assert recorder.seen("on_login") == [{"user": "ann", "lastlogin": clock.now()}]


def test_hook_on_course_view_answers_decide_access(rsite, recorder):
    ann = rsite.user("ann")
    open_course, closed, plain = rsite.course("open"), rsite.course("closed"), rsite.course("plain")
    assert access.view_course(rsite.site, ann, open_course) == CourseAccess("granted", "open day")
    refused = access.view_course(rsite.site, ann, closed)
    assert (refused.decision, refused.reason) == ("denied", "closed for repairs")
    assert access.view_course(rsite.site, ann, plain).decision == "denied"
    assert recorder.seen("on_course_view") == [
        {"course": "open", "enrolled": False},
        {"course": "closed", "enrolled": False},
        {"course": "plain", "enrolled": False},
    ]


def test_hook_on_completion_fires_once_per_new_completion(rsite, recorder):
    ann, course = rsite.user("ann"), rsite.course("C1")
    assert access.complete_course(rsite.site, ann, course, 1_780_000_000) is True
    assert access.complete_course(rsite.site, ann, course, 1_780_000_500) is False
    assert recorder.seen("on_completion") == [{"user": "ann", "time": 1_780_000_000}]


def test_hook_cohort_members_changed_once_per_batch_of_real_changes(rsite, recorder):
    ann, bob, cat = rsite.users(3)
    staff = rsite.cohort("staff", members=[cat])
    cohorts.add_members(rsite.site, staff, [ann, bob, cat])
    cohorts.add_members(rsite.site, staff, [ann])
    cohorts.remove_members(rsite.site, staff, [ann, bob])
    assert recorder.seen("cohort_members_changed") == [
        {"added": (ann.id, bob.id), "removed": ()},
        {"added": (), "removed": (ann.id, bob.id)},
    ]


def test_hook_cohort_deleted_fires_while_members_are_readable(rsite, recorder):
    staff = rsite.cohort("staff", members=rsite.users(2))
    staff_id = staff.id
    cohorts.delete_cohort(rsite.site, staff)
    assert recorder.seen("cohort_deleted") == [{"cohort_id": staff_id, "members": 2}]
    assert rsite.session.get(Cohort, staff_id) is None


def test_hook_profile_changed_for_real_changes_in_one_call_per_batch(rsite, recorder, tmp_path):
    ann, bob = rsite.user("ann"), rsite.user("bob")
    rsite.session.commit()
    people.set_fields(rsite.site, ann, {"department": "IT"})
    people.set_fields(rsite.site, ann, {"department": "IT"})
    (tmp_path / "users.csv").write_text(
        "username,email,firstname,lastname,city\n"
        "ann,ann@example.org,Ann,Test,Lyon\n"
        "bob,bob@example.org,Bob,Test,Lyon\n"
    )
    people.import_users(rsite.site, tmp_path / "users.csv")
    assert recorder.seen("profile_changed") == [
        {"users": (ann.id,), "fields": ("department",)},
        {"users": (ann.id, bob.id), "fields": ("city",)},
    ]


def test_hook_courses_changed_on_create_and_move_not_on_edit(rsite, recorder, tmp_path):
    csv = tmp_path / "courses.csv"
    csv.write_text("shortname,fullname\nC1,One\nC2,Two\n")
    catalog.import_courses(rsite.site, csv)
    csv.write_text("shortname,fullname\nC1,One renamed\n")
    catalog.import_courses(rsite.site, csv)
    c1, c2 = (lookup.course(rsite.session, shortname) for shortname in ("C1", "C2"))
    catalog.move_course(rsite.site, c1, rsite.category("Science"))
    assert recorder.seen("courses_changed") == [
        {"course_ids": (c1.id, c2.id)},
        {"course_ids": (c1.id,)},
    ]


class CustomForm:
    """Renders the manual method's instance form itself; stays silent for anything else."""

    @hookimpl
    def render_settings(self, method, scope):
        if method.name == "manual" and scope == "instance":
            return "<form>custom manual form</form>"
        return None


def test_hook_render_settings_plugin_first_then_the_core_default(make_runtime):
    runtime = make_runtime(plugins=(CustomForm(),))
    with runtime.site() as site:
        manual = site.plugins.method("manual")
        custom = site.plugins.render_settings(
            site=site, method=manual, scope="instance", schema=manual.instance_schema(),
            values={}, errors={},
        )  # fmt: skip
        default = site.plugins.render_settings(
            site=site, method=manual, scope="site", schema=manual.site_schema(),
            values={"expiry_action": "suspend"},
            errors={"expiry_action": ["Must be one of the listed actions."]},
        )  # fmt: skip
    assert custom == "<form>custom manual form</form>"
    assert '<option value="suspend" selected>' in default
    assert "Must be one of the listed actions." in default
