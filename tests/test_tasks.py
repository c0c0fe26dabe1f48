"""Scheduled tasks: the registry in the database, due times, admin changes, failures, on_cron, and
the database lock, in process and with real `enrolkit cron` processes racing on SQLite and
PostgreSQL (the test plugin tests/plugins/ektest_tasks, installed for the subprocesses only)."""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from enrolkit import hookimpl
from enrolkit.clock import parse_time
from enrolkit.errors import EnrolkitError
from enrolkit.models import LogEntry, ScheduledTask
from enrolkit.tasks import (
    FAILED,
    LOCKED,
    OK,
    Runner,
    ScheduleError,
    check_schedule,
    list_tasks,
    set_enabled,
    set_schedule,
)
from sqlalchemy import create_engine, select, text, update

ENROLKIT = str(Path(sys.executable).with_name("enrolkit"))


class TaskPlugin:
    """Two tasks that record their runs: ``t_good`` (writes a setting without committing, and
    returns a result) and ``t_flaky`` (fails while ``fail`` is set); and an ``on_cron`` that
    records its calls (and fails while ``cron_fails`` is set)."""

    def __init__(self, good: str = "0 3 * * *", flaky: str = "*/15 * * * *") -> None:
        self.schedules = {"t_good": good, "t_flaky": flaky}
        self.events: list[tuple] = []
        self.fail = True
        self.cron_fails = False

    @hookimpl
    def register_tasks(self, register):
        register("t_good", self.good, schedule=self.schedules["t_good"], component="ektest")
        register("t_flaky", self.flaky, schedule=self.schedules["t_flaky"], component="ektest")

    @hookimpl
    def on_cron(self, site, now):
        self.events.append(("on_cron", site.origin, now))
        if self.cron_fails:
            raise RuntimeError("cron bookkeeping broke")

    def good(self, site):
        self.events.append(("t_good", site.origin, site.now()))
        site.set_config("ektest", "good_ran_at", site.now())
        return "did good"

    def flaky(self, site):
        self.events.append(("t_flaky", site.origin, site.now()))
        if self.fail:
            raise RuntimeError("the source is down")

    def ran(self, name: str) -> list[int]:
        return [when for what, _origin, when in self.events if what == name]


@pytest.fixture
def plugin() -> TaskPlugin:
    return TaskPlugin()


@pytest.fixture
def rt(make_runtime, plugin, clock):
    clock.set("2026-09-01T08:07:00Z")
    return make_runtime(plugins=(plugin,))


def infos(rt) -> dict:
    with rt.site() as site:
        return {info.name: info for info in list_tasks(site)}


def mine(outcomes) -> dict:
    """The outcomes of the test plugin's tasks, by name (core tasks run too)."""
    return {o.name: o for o in outcomes if o.component == "ektest" or o.name == "on_cron"}


def at(when: str) -> int:
    return parse_time(when)


# --- registry and schedules ------------------------------------------------------------------


def test_new_tasks_get_their_default_schedule_and_are_due_at_once(rt):
    tasks = infos(rt)
    assert tasks["t_good"].schedule == tasks["t_good"].default_schedule == "0 3 * * *"
    # Never run: due now, so a fresh site's first cron runs everything (issue 16).
    assert tasks["t_good"].next_run == tasks["t_flaky"].next_run == at("2026-09-01T08:07:00Z")
    assert (tasks["t_good"].enabled, tasks["t_good"].last_run, tasks["t_good"].component) == (
        True,
        0,
        "ektest",
    )
    assert tasks["apply_pending_actions"].schedule == "* * * * *"
    assert tasks["enforce_end_dates"].schedule == "*/10 * * * *"
    assert tasks["enforce_end_dates"].next_run == at("2026-09-01T08:07:00Z")


def test_cron_runs_a_task_when_due_then_moves_its_next_run(rt, plugin, clock):
    runner = Runner(rt)
    assert mine(runner.cron())["t_good"].status == OK  # the first cron: never run, so due
    assert infos(rt)["t_good"].next_run == at("2026-09-02T03:00:00Z")
    plugin.events.clear()
    clock.set("2026-09-02T02:59:59Z")
    assert "t_good" not in mine(runner.cron())
    clock.set("2026-09-02T03:00:00Z")
    outcome = mine(runner.cron())["t_good"]
    assert (outcome.status, outcome.result) == (OK, "did good")
    assert plugin.ran("t_good") == [at("2026-09-02T03:00:00Z")]
    assert "t_good" not in mine(runner.cron())  # same minute, another run: not due any more
    info = infos(rt)["t_good"]
    assert info.last_run == at("2026-09-02T03:00:00Z")
    assert info.next_run == at("2026-09-03T03:00:00Z")
    assert info.last_result == "did good" and info.last_duration >= 0 and info.locked_by == ""
    # The task ran as cron, and what it left uncommitted was committed after it.
    assert {origin for what, origin, _ in plugin.events if what == "t_good"} == {"cron"}
    with rt.site() as site:
        assert site.get_config("ektest", "good_ran_at") == at("2026-09-02T03:00:00Z")


def test_force_runs_every_enabled_task_and_task_run_runs_a_disabled_one(rt, plugin):
    with rt.site() as site:
        set_enabled(site, "t_flaky", False)
    outcomes = list(Runner(rt).cron(force=True))
    assert "t_good" in mine(outcomes) and "t_flaky" not in mine(outcomes)
    assert {"apply_pending_actions", "enforce_end_dates"} <= {o.name for o in outcomes}
    plugin.fail = False
    assert Runner(rt).run("t_flaky").status == OK
    assert plugin.ran("t_flaky")
    with pytest.raises(EnrolkitError, match="no scheduled task 'nope'"):
        Runner(rt).run("nope")


def test_enabling_again_skips_the_missed_times(rt, plugin, clock):
    with rt.site() as site:
        set_enabled(site, "t_flaky", False)
    clock.set("2026-09-03T10:05:00Z")
    assert "t_flaky" not in mine(Runner(rt).cron())
    with rt.site() as site:
        info = set_enabled(site, "t_flaky", True)
    assert info.enabled and info.next_run == at("2026-09-03T10:15:00Z")
    assert "t_flaky" not in mine(Runner(rt).cron())


def test_admin_schedule_survives_a_new_default_an_unchanged_one_follows(make_runtime, clock):
    clock.set("2026-09-01T08:07:00Z")
    first = make_runtime(plugins=(TaskPlugin(),))
    with first.site() as site:
        info = set_schedule(site, "t_good", " 30  6 * * 1 ")  # spaces are normalised
    assert info.schedule == "30 6 * * 1"
    assert info.next_run == at("2026-09-07T06:30:00Z")  # the next Monday
    upgraded = make_runtime(
        plugins=(TaskPlugin(good="0 4 * * *", flaky="*/20 * * * *"),), url=first.url
    )
    tasks = infos(upgraded)
    assert (tasks["t_good"].schedule, tasks["t_good"].default_schedule) == (
        "30 6 * * 1",
        "0 4 * * *",
    )
    assert tasks["t_good"].next_run == at("2026-09-07T06:30:00Z")
    assert tasks["t_flaky"].schedule == "*/20 * * * *"
    assert tasks["t_flaky"].next_run == at("2026-09-01T08:20:00Z")


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("*/10 * *", "has 3 field(s); give 5 fields"),
        ("* * * * * *", "has 6 field(s)"),
        ("61 * * * *", "is not a valid cron expression"),
        ("every day", "has 2 field(s)"),
        ("0 0 30 2 *", "never matches a real date"),
    ],
)
def test_bad_cron_expression_is_a_clear_error(rt, expression, message):
    with rt.site() as site, pytest.raises(ScheduleError, match=re.escape(message)):
        set_schedule(site, "t_good", expression)
    assert infos(rt)["t_good"].schedule == "0 3 * * *"


def test_shorthands_are_accepted():
    assert check_schedule("@daily") == "@daily"


def test_a_plugin_with_a_bad_default_schedule_does_not_load(make_runtime):
    class BadDefault:
        @hookimpl
        def register_tasks(self, register):
            register("t_bad", lambda site: None, schedule="often")

    with pytest.raises(ScheduleError, match="default schedule of task 't_bad'"):
        make_runtime(plugins=(BadDefault(),))


# --- failures and on_cron ----------------------------------------------------------------------


def test_a_failing_task_is_logged_the_others_run_and_it_is_retried(rt, plugin, clock):
    clock.set("2026-09-01T08:15:00Z")
    outcomes = mine(Runner(rt).cron(force=True))
    assert outcomes["t_good"].status == OK
    failed = outcomes["t_flaky"]
    assert failed.status == FAILED
    assert failed.result.startswith("RuntimeError: the source is down (at test_tasks.py:")
    info = infos(rt)["t_flaky"]
    assert info.last_result == f"failed: {failed.result}"
    assert info.next_run == at("2026-09-01T08:30:00Z") and info.locked_by == ""
    with rt.site() as site:
        entry = site.session.scalars(select(LogEntry).where(LogEntry.event == "task_failed")).one()
    assert (entry.component, entry.origin) == ("ektest", "cron")
    assert entry.reason == f"t_flaky: {failed.result}"
    plugin.fail = False
    clock.set("2026-09-01T08:30:00Z")
    assert mine(Runner(rt).cron())["t_flaky"].status == OK
    assert infos(rt)["t_flaky"].last_result == "ok"
    assert len(plugin.ran("t_flaky")) == 2


def test_on_cron_fires_once_per_run_before_the_tasks(rt, plugin, clock):
    infos(rt)  # registered at 08:07: t_good is due at 03:00 the next day
    clock.set("2026-09-02T03:00:00Z")
    list(Runner(rt).cron())
    assert [e[0] for e in plugin.events] == ["on_cron", "t_flaky", "t_good"]
    assert plugin.events[0] == ("on_cron", "cron", at("2026-09-02T03:00:00Z"))
    list(Runner(rt).cron())  # nothing due: the hook still fires
    Runner(rt).run("t_good")  # a single task run is not a cron run
    assert len([e for e in plugin.events if e[0] == "on_cron"]) == 2


def test_a_failing_on_cron_is_logged_and_the_tasks_still_run(rt, plugin):
    plugin.cron_fails = True
    outcomes = mine(Runner(rt).cron(force=True))
    assert outcomes["on_cron"].status == FAILED
    assert "cron bookkeeping broke" in outcomes["on_cron"].result
    assert outcomes["t_good"].status == OK
    with rt.site() as site:
        events = site.session.scalars(select(LogEntry.event)).all()
    assert "cron_failed" in events


# --- the lock, in process --------------------------------------------------------------------


def test_a_held_lock_is_skipped_until_it_expires(rt, plugin, clock):
    infos(rt)
    dead = "deadhost:4242:0badc0de"
    with rt.db.begin() as conn:
        conn.execute(
            update(ScheduledTask)
            .where(ScheduledTask.name == "t_good")
            .values(lock_owner=dead, lock_until=clock.now() + 3600)
        )
    outcome = mine(Runner(rt).cron(force=True))["t_good"]
    assert outcome.status == LOCKED
    assert outcome.result == f"locked by {dead} until 2026-09-01T09:07:00Z"
    assert outcome.line() == f"t_good: skipped, locked by {dead} until 2026-09-01T09:07:00Z"
    assert infos(rt)["t_good"].locked_by == dead
    assert not plugin.ran("t_good")
    clock.advance(3601)
    assert mine(Runner(rt).cron(force=True))["t_good"].status == OK
    assert infos(rt)["t_good"].locked_by == ""


# --- the CLI, in process -----------------------------------------------------------------------


@pytest.fixture
def plugin_cli(rt):
    from enrolkit.testing import run_cli

    def run(*args: str):
        return run_cli(rt, *args)

    return run


def test_task_list_set_enable_disable_run(plugin_cli, clock):
    listed = json.loads(plugin_cli("task", "list", "--json").output)
    good = next(row for row in listed if row["name"] == "t_good")
    assert good == {
        "name": "t_good",
        "component": "ektest",
        "schedule": "0 3 * * *",
        "enabled": True,
        "last_run": 0,
        "next_run": at("2026-09-01T08:07:00Z"),  # never run: due at once
        "duration": 0.0,
        "last_result": "",
        "default_schedule": "0 3 * * *",
        "locked_by": "",
        "lock_until": 0,
    }
    table = plugin_cli("task", "list").output
    good_row = next(line for line in table.splitlines() if line.startswith("t_good "))
    assert "  —  " in good_row and "2026-09-01 08:07" in good_row  # never ran; due: a date
    result = plugin_cli("task", "set", "t_good", "*/5 * * * *")
    assert result.exit_code == 0
    assert result.output == "t_good: schedule '*/5 * * * *', next run 2026-09-01T08:10:00Z\n"
    bad = plugin_cli("task", "set", "t_good", "*/5 * *")
    assert bad.exit_code == 1
    assert bad.output.count("\n") == 1 and "has 3 field(s)" in bad.output
    assert plugin_cli("task", "disable", "t_good").output == "t_good: disabled\n"
    listed = {row["name"]: row for row in json.loads(plugin_cli("task", "list", "--json").output)}
    assert listed["t_good"]["enabled"] is False
    assert plugin_cli("task", "enable", "t_good").exit_code == 0
    ran = plugin_cli("task", "run", "t_good")
    assert ran.exit_code == 0 and ran.output.startswith("t_good: ok in ")
    assert ran.output.rstrip().endswith("; did good")
    failed = plugin_cli("task", "run", "t_flaky")
    assert failed.exit_code == 1 and "t_flaky: failed after" in failed.output
    unknown = plugin_cli("task", "run", "nope")
    assert unknown.exit_code == 1 and "no scheduled task 'nope'" in unknown.output


def test_cron_command_reports_each_task_and_fails_when_one_failed(plugin_cli, plugin, clock):
    first = plugin_cli("cron")  # a fresh site: every task runs once
    assert first.exit_code == 1
    assert "t_good: ok in" in first.output and "t_flaky: failed after" in first.output
    clock.set("2026-09-01T08:08:00Z")
    quiet = plugin_cli("cron")
    assert quiet.exit_code == 0 and "t_flaky" not in quiet.output
    clock.set("2026-09-01T08:15:00Z")
    result = plugin_cli("cron")
    assert result.exit_code == 1
    assert "t_flaky: failed after" in result.output
    assert "1 task(s) failed: t_flaky; see `enrolkit log --event task_failed`" in result.output
    plugin.fail = False
    forced = plugin_cli("cron", "--force")
    assert forced.exit_code == 0
    assert "t_good: ok in" in forced.output and "t_flaky: ok in" in forced.output


# --- real processes racing for the lock (SQLite, and PostgreSQL when available) --------------


@pytest.fixture
def racing(any_db, make_runtime, tmp_path, ektest_tasks_path, clock):
    """Start ``enrolkit cron`` processes on one fresh database; read the plugin's record."""
    make_runtime(url=any_db)
    record, release = tmp_path / "record.txt", tmp_path / "release"
    record.touch()
    # Other installed plugins stay out of these processes: only the core and the test plugin.
    others = {ep.name for ep in importlib.metadata.entry_points(group="enrolkit")} - {
        "ektest_tasks"
    }

    class Racing:
        url = any_db

        def env(self, now: int) -> dict:
            path = os.pathsep.join(filter(None, [ektest_tasks_path, os.environ.get("PYTHONPATH")]))
            return {
                **os.environ,
                "ENROLKIT_DATABASE_URL": any_db,
                "ENROLKIT_HOME": str(tmp_path / "home"),
                "ENROLKIT_NOW": str(now),
                "ENROLKIT_DISABLE_PLUGINS": ",".join(sorted(others)),
                "PYTHONPATH": path,
                "EKTEST_TASKS_LOG": str(record),
                "EKTEST_TASKS_RELEASE": str(release),
            }

        def start(self, *args: str, now: int) -> subprocess.Popen:
            return subprocess.Popen(
                [ENROLKIT, *args],
                env=self.env(now),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )

        def run(self, *args: str, now: int) -> subprocess.CompletedProcess:
            return subprocess.run(
                [ENROLKIT, *args], env=self.env(now), capture_output=True, text=True, timeout=60
            )

        def events(self) -> list[tuple[str, int]]:
            return [(w[0], int(w[1])) for w in map(str.split, record.read_text().splitlines())]

        def wait_for(self, event: str, timeout: float = 30) -> None:
            deadline = time.monotonic() + timeout
            while not any(e == event for e, _ in self.events()):
                assert time.monotonic() < deadline, f"{event} never happened: {self.events()}"
                time.sleep(0.05)

        def release(self) -> None:
            release.touch()

        def lock(self) -> tuple[str, int]:
            engine = create_engine(any_db.replace("postgresql://", "postgresql+psycopg://"))
            try:
                with engine.connect() as conn:
                    return conn.execute(
                        select(ScheduledTask.lock_owner, ScheduledTask.lock_until).where(
                            ScheduledTask.name == "ektest_slow"
                        )
                    ).one()
            finally:
                engine.dispose()

        def set_owner(self, owner: str) -> None:
            engine = create_engine(any_db.replace("postgresql://", "postgresql+psycopg://"))
            try:
                with engine.begin() as conn:
                    conn.execute(
                        update(ScheduledTask)
                        .where(ScheduledTask.name == "ektest_slow")
                        .values(lock_owner=owner)
                    )
            finally:
                engine.dispose()

    return Racing()


def test_two_cron_processes_started_together_never_run_a_task_at_once(racing, clock):
    now = clock.now()
    procs = [racing.start("cron", "--force", now=now) for _ in range(2)]
    try:
        # One holds ektest_slow (it waits for the release file); the other must find it locked,
        # say so, run the rest and exit 0 while the holder is still running.
        deadline = time.monotonic() + 60
        while all(p.poll() is None for p in procs):
            assert time.monotonic() < deadline, "neither cron process finished"
            time.sleep(0.05)
        skipper = next(p for p in procs if p.poll() is not None)
        holder = next(p for p in procs if p is not skipper)
        out, err = skipper.communicate()
        assert skipper.returncode == 0, err
        assert holder.poll() is None
        assert [e for e in racing.events() if e[0].startswith("slow")] == [
            ("slow-start", holder.pid)
        ]
        assert "ektest_slow: skipped, locked by " in out and f":{holder.pid}:" in out
        racing.release()
        out, err = holder.communicate(timeout=60)
        assert holder.returncode == 0, err
        assert "ektest_slow: ok in" in out and "; released" in out
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate()
    slow = [e for e in racing.events() if e[0].startswith("slow")]
    assert slow == [("slow-start", holder.pid), ("slow-end", holder.pid)]
    assert racing.lock() == ("", 0)


def test_the_lock_of_a_killed_cron_process_expires(racing, clock):
    """A runner killed on another machine: its lease (60 s, not renewed any more) runs out, then
    the task is taken over. On the runner's own machine it is taken over at once, see
    tests/security/test_security_locks.py."""
    now = clock.now()
    killed = racing.start("cron", "--force", now=now)
    try:
        racing.wait_for("slow-start")
    finally:
        killed.kill()  # SIGKILL: no chance to release the lock
        killed.communicate()
    owner, until = racing.lock()
    assert f":{killed.pid}:" in owner and until == now + 60
    elsewhere = "othernode" + owner[owner.index(":") :]
    racing.set_owner(elsewhere)  # as if it had run on another machine
    blocked = racing.run("cron", "--force", now=now + 59)
    assert blocked.returncode == 0, blocked.stderr
    assert f"ektest_slow: skipped, locked by {elsewhere} until" in blocked.stdout
    assert "ektest_quick: ok in" in blocked.stdout
    racing.release()
    later = racing.run("cron", "--force", now=now + 61)
    assert later.returncode == 0, later.stderr
    assert "ektest_slow: ok in" in later.stdout
    starts = [pid for event, pid in racing.events() if event == "slow-start"]
    assert len(starts) == 2 and starts[0] == killed.pid and starts[1] != killed.pid
    assert racing.lock() == ("", 0)


def test_a_task_failing_on_the_database_keeps_the_databases_words_in_the_log(
    make_runtime, clock, caplog
):
    """Issue 18: a task's result is shown by the web admin and the API; the driver's text (the
    statement, the table) goes to the runner's log, not there."""

    class BrokenQuery:
        @hookimpl
        def register_tasks(self, register):
            register("t_sql", self.run, schedule="0 3 * * *", component="ektest")

        def run(self, site):
            site.session.execute(text("SELECT secret_column FROM no_such_table"))

    runtime = make_runtime(plugins=(BrokenQuery(),))
    with caplog.at_level(logging.ERROR, logger="enrolkit.tasks"):
        outcome = Runner(runtime).run("t_sql")
    assert outcome.status == FAILED
    assert outcome.result == "database error; the runner's log (stderr) has the details"
    assert infos(runtime)["t_sql"].last_result == f"failed: {outcome.result}"
    [entry] = caplog.records
    assert "no_such_table" in str(entry.exc_info[1])
