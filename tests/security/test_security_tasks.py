"""Issue 12 (reliability) and issue 18 item 3: task locks die with their owner, and cron's summary
says when the mass-removal guard held a plan. Real ``enrolkit cron`` and ``enrolkit serve``
processes, killed with SIGKILL, on SQLite and PostgreSQL (the test plugin ``ektest_tasks`` holds
``ektest_slow`` running until the test lets it go)."""

from __future__ import annotations

import importlib.metadata
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from enrolkit.api import tokens
from enrolkit.models import CohortMember, HeldPlan, LogEntry, ScheduledTask, UserEnrolment
from enrolkit.tasks import node_id, operator
from enrolkit.testing import SiteFactory
from sqlalchemy import create_engine, delete, func, select, update

ENROLKIT = str(Path(sys.executable).with_name("enrolkit"))


def engine_for(url: str):
    return create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


class Tasks:
    """``enrolkit`` processes on one database with only the core and the test plugin loaded."""

    def __init__(self, url: str, tmp_path: Path, plugin_path: str) -> None:
        self.url, self.home = url, tmp_path / "home"
        self.record, self.release_file = tmp_path / "record.txt", tmp_path / "release"
        self.record.touch()
        self.plugin_path = plugin_path
        others = {ep.name for ep in importlib.metadata.entry_points(group="enrolkit")}
        self.disabled = ",".join(sorted(others - {"ektest_tasks"}))

    def env(self, **extra: str) -> dict:
        environ = {
            **os.environ,
            "ENROLKIT_DATABASE_URL": self.url,
            "ENROLKIT_HOME": str(self.home),
            "ENROLKIT_DISABLE_PLUGINS": self.disabled,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [self.plugin_path, os.environ.get("PYTHONPATH")])
            ),
            "EKTEST_TASKS_LOG": str(self.record),
            "EKTEST_TASKS_RELEASE": str(self.release_file),
            "EKTEST_TASKS_WAIT": "300",  # held until released, however slow the machine
        }
        environ.pop("ENROLKIT_NOW", None)
        environ.pop("ENROLKIT_TASK_LEASE", None)
        environ.update(extra)
        return environ

    def start(self, *args: str, **env: str) -> subprocess.Popen:
        return subprocess.Popen(
            [ENROLKIT, *args],
            env=self.env(**env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [ENROLKIT, *args], env=self.env(**env), capture_output=True, text=True, timeout=120
        )

    def events(self) -> list[tuple[str, int]]:
        return [(w[0], int(w[1])) for w in map(str.split, self.record.read_text().splitlines())]

    def wait_for(self, event: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not any(e == event for e, _ in self.events()):
            assert time.monotonic() < deadline, f"{event} never happened: {self.events()}"
            time.sleep(0.05)

    def release(self) -> None:
        self.release_file.touch()

    def lock(self) -> tuple[str, int]:
        engine = engine_for(self.url)
        try:
            with engine.connect() as conn:
                return conn.execute(
                    select(ScheduledTask.lock_owner, ScheduledTask.lock_until).where(
                        ScheduledTask.name == "ektest_slow"
                    )
                ).one()
        finally:
            engine.dispose()

    def set_lock(self, owner: str, until: int | None = None) -> None:
        values = {"lock_owner": owner} | ({} if until is None else {"lock_until": until})
        engine = engine_for(self.url)
        try:
            with engine.begin() as conn:
                conn.execute(
                    update(ScheduledTask).where(ScheduledTask.name == "ektest_slow").values(values)
                )
        finally:
            engine.dispose()

    def log(self, event: str) -> list[str]:
        engine = engine_for(self.url)
        try:
            with engine.connect() as conn:
                return list(
                    conn.scalars(
                        select(LogEntry.reason).where(LogEntry.event == event).order_by(LogEntry.id)
                    )
                )
        finally:
            engine.dispose()


@pytest.fixture
def tasks(any_db, make_runtime, tmp_path, ektest_tasks_path):
    make_runtime(url=any_db)
    made = Tasks(any_db, tmp_path, ektest_tasks_path)
    assert made.run("task", "list").returncode == 0  # the registry rows exist
    return made


def kill(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)  # no chance to release anything
    process.communicate()


# --- a dead owner on this machine ------------------------------------------------------------------


def test_a_killed_runners_lock_is_taken_over_at_once_on_its_machine(tasks):
    """Issue 12: after a SIGKILL mid-task, ``cron --force`` said "skipped, locked" for an hour."""
    now = "1788249600"
    killed = tasks.start("cron", "--force", ENROLKIT_NOW=now)
    try:
        tasks.wait_for("slow-start")
    finally:
        kill(killed)
    owner, until = tasks.lock()
    assert owner.startswith(f"{node_id()}:{killed.pid}:") and until == int(now) + 60
    tasks.release()
    again = tasks.run("cron", "--force", ENROLKIT_NOW=now)  # the same second: no lease lapsed
    assert again.returncode == 0, again.stderr
    assert "ektest_slow: ok in" in again.stdout and "skipped" not in again.stdout
    starts = [pid for event, pid in tasks.events() if event == "slow-start"]
    assert len(starts) == 2 and starts[0] == killed.pid
    assert tasks.lock() == ("", 0)
    [taken] = tasks.log("task_lock_taken_over")
    assert taken.startswith(f"ektest_slow: the lock of {owner} (process gone) taken by ")


def test_a_live_runner_on_this_machine_keeps_its_lock(tasks):
    now = "1788249600"
    holder = tasks.start("cron", "--force", ENROLKIT_NOW=now)
    try:
        tasks.wait_for("slow-start")
        owner, _ = tasks.lock()
        other = tasks.run("cron", "--force", ENROLKIT_NOW=now)
        assert other.returncode == 0, other.stderr
        assert f"ektest_slow: skipped, locked by {owner} until" in other.stdout
        # Its process is surer than its lease: alive here, it keeps the lock past the lease (a
        # long write on SQLite may delay a renewal).
        later = tasks.run("cron", "--force", ENROLKIT_NOW=str(int(now) + 3600))
        assert (
            f"ektest_slow: skipped, locked by {owner}, alive on this machine (its lease ran out "
            "2026-09-01T08:01:00Z)" in later.stdout
        ), later.stdout
        tasks.release()
        out, err = holder.communicate(timeout=60)
        assert holder.returncode == 0 and "ektest_slow: ok in" in out, err
    finally:
        if holder.poll() is None:
            kill(holder)
    assert tasks.log("task_lock_taken_over") == []


# --- the lease, on the wall clock ------------------------------------------------------------------


def test_the_lease_is_renewed_while_the_task_runs_and_lapses_soon_after_a_kill(tasks):
    """With a 3-second lease: a task running for longer keeps its lock (renewed every second);
    killed, its lock is free again within the lease, for a runner on any machine."""
    lease = {"ENROLKIT_TASK_LEASE": "3"}
    holder = tasks.start("cron", "--force", **lease)
    try:
        tasks.wait_for("slow-start")
        time.sleep(4.5)  # longer than one lease: only the renewals keep it
        owner, until = tasks.lock()
        assert owner.split(":")[1] == str(holder.pid) and until >= time.time() + 1
        other = tasks.run("cron", "--force", **lease)
        assert f"ektest_slow: skipped, locked by {owner} until" in other.stdout, other.stdout
    finally:
        kill(holder)
    killed_at = time.time()
    tasks.set_lock("othernode" + owner[owner.index(":") :])  # as if it had run elsewhere
    _, until = tasks.lock()
    assert until <= killed_at + 3 + 1  # no renewal after the kill: it lapses within one lease
    tasks.release()
    time.sleep(max(0.0, until + 1.1 - time.time()))
    taken = tasks.run("cron", "--force", **lease)
    assert taken.returncode == 0, taken.stderr
    assert "ektest_slow: ok in" in taken.stdout, taken.stdout
    assert tasks.lock() == ("", 0)


def test_a_bad_lease_setting_is_one_line(tasks):
    result = tasks.run("cron", ENROLKIT_TASK_LEASE="1h")
    assert result.returncode == 1
    assert result.stderr == (
        "enrolkit: error: ENROLKIT_TASK_LEASE: '1h' is not a number of seconds from 2 to 3600\n"
    )


# --- enrolkit task unlock ----------------------------------------------------------------------------


def test_task_unlock_frees_a_lock_and_logs_who_did_it(tasks):
    held = "othernode:4242:0badc0de"
    tasks.set_lock(held, until=int(time.time()) + 3600)
    blocked = tasks.run("cron", "--force")
    assert f"ektest_slow: skipped, locked by {held} until" in blocked.stdout
    result = tasks.run("task", "unlock", "ektest_slow")
    assert (result.returncode, result.stdout) == (
        0,
        f"ektest_slow: unlocked (was locked by {held})\n",
    )
    assert tasks.lock() == ("", 0)
    assert tasks.log("task_unlocked") == [f"ektest_slow: lock of {held} freed by {operator()}"]
    again = tasks.run("task", "unlock", "ektest_slow")
    assert (again.returncode, again.stdout) == (0, "ektest_slow: not locked\n")
    assert len(tasks.log("task_unlocked")) == 1
    unknown = tasks.run("task", "unlock", "nope")
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("enrolkit: error: no scheduled task 'nope' (tasks: ")


def test_task_unlock_of_a_live_runner_here_needs_force(tasks):
    holder = tasks.start("cron", "--force")
    try:
        tasks.wait_for("slow-start")
        owner, _ = tasks.lock()
        refused = tasks.run("task", "unlock", "ektest_slow")
        assert refused.returncode == 1
        assert refused.stderr == (
            f"enrolkit: error: task ektest_slow is running in process {holder.pid} on this "
            f"machine (lock {owner}); stop that process first, or use --force\n"
        )
        forced = tasks.run("task", "unlock", "ektest_slow", "--force")
        assert forced.stdout == f"ektest_slow: unlocked (was locked by {owner})\n"
        tasks.release()
        out, err = holder.communicate(timeout=60)
    finally:
        if holder.poll() is None:
            kill(holder)
    assert "ektest_slow: ok in" in out
    assert "warning: task ektest_slow lost its lock while it ran" in err


# --- the API's task run uses the same lock -----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_task_run_through_the_api_by_a_killed_server_is_free_again_at_once(tasks, make_runtime):
    """Issue 18: a task started by ``POST /api/v1/tasks/…/run`` 4 s before a SIGKILL of its
    server stayed locked for 3,600 s."""
    runtime = make_runtime(url=tasks.url)
    with runtime.site() as site:
        secret = tokens.create(site, "ops", tokens.WRITE)
    port = free_port()
    server = tasks.start("serve", "--port", str(port), "--threads", "2")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None, server.stderr
                time.sleep(0.1)
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/v1/tasks/ektest_slow/run",
            method="POST",
            headers={"Authorization": f"Bearer {secret}", "Content-Type": "application/json"},
            data=b"{}",
        )
        # The call waits while the task runs: it goes from a thread, and dies with the server.
        threading.Thread(target=_call, args=(request,), daemon=True).start()
        tasks.wait_for("slow-start")
        owner, _ = tasks.lock()
        assert owner.split(":")[1] == str(server.pid)
    finally:
        kill(server)
    tasks.release()
    result = tasks.run("cron", "--force")
    assert result.returncode == 0, result.stderr
    assert "ektest_slow: ok in" in result.stdout
    assert len(tasks.log("task_lock_taken_over")) == 1


def _call(request) -> None:
    try:
        urllib.request.urlopen(request, timeout=120).read()
    except OSError:  # the server was killed under it
        pass


# --- the held plan in cron's summary ------------------------------------------------------------------


def test_a_held_plan_is_reported_as_held_not_as_re_synced(any_db, make_runtime, tmp_path):
    """Issue 12: "1 re-synced: 100 unenrolled" when the guard had held the plan and nothing
    changed; it must say "held as plan N (would unenrol 100)"."""
    runtime = make_runtime(url=any_db, entry_points=True)
    with runtime.site() as site, site.atomic():
        f = SiteFactory(site)
        promo = f.cohort("promo", members=f.users(100))
        course = f.course("C1")
        f.instance(course, "cohort", cohort="promo")
        # The members leave without the change hooks (a bulk load into the cohort table).
        site.session.execute(delete(CohortMember).where(CohortMember.cohort_id == promo.id))
    env = {
        **os.environ,
        "ENROLKIT_DATABASE_URL": any_db,
        "ENROLKIT_HOME": str(tmp_path / "home"),
    }
    env.pop("ENROLKIT_NOW", None)
    result = subprocess.run(
        [ENROLKIT, "task", "run", "cohort_sync"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    with runtime.site() as site:
        [held] = site.session.scalars(select(HeldPlan)).all()
        enrolled = site.session.scalar(select(func.count()).select_from(UserEnrolment))
    assert result.stdout.startswith("cohort_sync: ok in ")
    assert result.stdout.rstrip().endswith(
        f"; 1 instance(s) checked, 0 re-synced; held as plan {held.id} (would unenrol 100)"
    )
    assert "unenrolled" not in result.stdout
    assert enrolled == 100
