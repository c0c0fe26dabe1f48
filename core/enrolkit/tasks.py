"""Scheduled tasks: the registry kept in ``scheduled_tasks``, cron schedules, database locks.

Plugins register tasks (``register_tasks``); ``enrolkit cron`` runs the due ones and exits. A
running task holds a lock row in the database, taken with one conditional UPDATE, so any number
of cron runners on one machine or many sharing PostgreSQL never run one task twice at once.

The lock is a lease: it lasts ``ENROLKIT_TASK_LEASE`` seconds (60 by default) and a thread of the
runner, on a database connection of its own, renews it every third of that while the task runs.
So the lock of a killed runner (SIGKILL, a lost node) is free again within one lease on any node.
A lock whose owner ran on this node is judged by its process instead: taken over at once when
the process is gone, kept while it is alive (see :func:`lock_state`). An operator frees a lock by
hand with ``enrolkit task unlock NAME`` (logged as ``task_unlocked``).

Schedules are cron expressions in UTC. Scheduling decisions and lock times read ``clock.now()``
(so ``ENROLKIT_NOW`` replays a day); durations are measured on the wall clock.
"""

from __future__ import annotations

import getpass
import logging
import os
import secrets
import socket
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from croniter import CroniterBadDateError, croniter
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite

from . import clock, log
from .errors import EnrolkitError, NotFound, Refused, message
from .models import ScheduledTask
from .texts import Text

_log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from .plugins import TaskSpec
    from .runtime import Runtime
    from .site import Site

OK, FAILED, LOCKED = "ok", "failed", "locked"
tasks_table = ScheduledTask.__table__

#: Seconds a task lock lasts unless renewed, when ``ENROLKIT_TASK_LEASE`` does not say.
DEFAULT_LEASE = 60
LEASE_RANGE = (2, 3600)


class ScheduleError(EnrolkitError):
    """A cron expression that is malformed or never matches."""


def check_schedule(expression: str, *, where: str = "schedule") -> str:
    """The expression with its spaces normalised, or :class:`ScheduleError` saying what is wrong.

    Five fields (minute hour day-of-month month day-of-week, UTC) or a shorthand like ``@daily``.
    """
    text = " ".join(str(expression).split())
    fields = text.split(" ")
    usage = "give 5 fields (minute hour day-of-month month day-of-week, UTC), e.g. '*/10 * * * *'"
    if not text.startswith("@") and len(fields) != 5:
        raise ScheduleError(f"{where}: {text!r} has {len(fields)} field(s); {usage}")
    if not croniter.is_valid(text):
        raise ScheduleError(f"{where}: {text!r} is not a valid cron expression; {usage}")
    try:
        next_time(text, clock.now())
    except CroniterBadDateError:
        raise ScheduleError(f"{where}: {text!r} never matches a real date") from None
    return text


def next_time(schedule: str, after: int) -> int:
    """The first time strictly after ``after`` that ``schedule`` matches, in Unix seconds."""
    start = datetime.fromtimestamp(after, UTC)
    return int(croniter(schedule, start).get_next(float))


# --- the registry in the database ------------------------------------------------------------


@dataclass(frozen=True)
class TaskInfo:
    """What an admin sees of one task."""

    name: str
    component: str
    schedule: str
    default_schedule: str
    enabled: bool
    last_run: int
    next_run: int
    last_duration: float
    last_result: str
    locked_by: str
    lock_until: int


def sync(site: Site) -> None:
    """Bring ``scheduled_tasks`` in line with the registered tasks, and commit.

    A new task gets its default schedule and is due at once: a task that has never run runs at
    the next ``enrolkit cron`` (a fresh site's first cron does everything, a file dropped before
    it does not wait for the hour), then at its schedule's times. An admin's schedule
    (one that differs from the stored default) survives a plugin changing its default; an
    unchanged one follows the new default. Rows of uninstalled tasks stay, so reinstalling a
    plugin keeps the admin's choices.
    """
    specs = site.plugins.tasks
    now = site.now()
    with site.atomic():
        stored = {row.name: row for row in site.session.scalars(select(ScheduledTask))}
        new = [_new_row(spec, now) for name, spec in specs.items() if name not in stored]
        if new:
            # Two runners starting together on a fresh site both insert: the second one's rows
            # are dropped instead of failing on the primary key.
            site.session.execute(_insert_ignore(site), new)
        for name, row in stored.items():
            spec = specs.get(name)
            if spec is None:
                continue
            row.component = spec.component
            if row.default_schedule != spec.schedule:
                if row.schedule == row.default_schedule:
                    row.schedule = spec.schedule
                    row.next_run = next_time(spec.schedule, now)
                row.default_schedule = spec.schedule


def _new_row(spec: TaskSpec, now: int) -> dict:
    return {
        "name": spec.name,
        "component": spec.component,
        "schedule": spec.schedule,
        "default_schedule": spec.schedule,
        "enabled": True,
        "last_run": 0,
        "next_run": now,  # never run: due now
        "last_duration": 0.0,
        "last_result": "",
        "lock_owner": "",
        "lock_until": 0,
    }


def _insert_ignore(site: Site):
    dialect = site.session.get_bind().dialect.name
    insert = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    return insert(tasks_table).on_conflict_do_nothing(index_elements=["name"])


def list_tasks(site: Site) -> list[TaskInfo]:
    """Every registered task, by name, after :func:`sync`."""
    sync(site)
    rows = site.session.scalars(
        select(ScheduledTask)
        .where(ScheduledTask.name.in_(list(site.plugins.tasks)))
        .order_by(ScheduledTask.name)
    )
    now = site.now()
    infos = []
    for row in rows:
        held = lock_state(row.lock_owner, row.lock_until, now) == HELD
        infos.append(
            TaskInfo(
                name=row.name,
                component=row.component,
                schedule=row.schedule,
                default_schedule=row.default_schedule,
                enabled=row.enabled,
                last_run=row.last_run,
                next_run=row.next_run,
                last_duration=row.last_duration,
                last_result=row.last_result,
                locked_by=row.lock_owner if held else "",
                lock_until=row.lock_until if held else 0,
            )
        )
    return infos


def _row(site: Site, name: str) -> ScheduledTask:
    sync(site)
    row = site.session.get(ScheduledTask, name)
    if row is None or name not in site.plugins.tasks:
        known = ", ".join(sorted(site.plugins.tasks)) or "none"
        raise NotFound(f"no scheduled task {name!r} (tasks: {known})")
    return row


def set_schedule(site: Site, name: str, expression: str) -> TaskInfo:
    """Change a task's schedule (validated) and its next run to match."""
    schedule = check_schedule(expression, where=f"schedule of task {name!r}")
    with site.atomic():
        row = _row(site, name)
        row.schedule = schedule
        row.next_run = next_time(schedule, site.now())
    return _info(site, name)


def set_enabled(site: Site, name: str, enabled: bool) -> TaskInfo:
    """Enable or disable a task. Enabling moves its next run to the schedule's next time, so a
    task that was off for a week does not run at once for the missed times."""
    with site.atomic():
        row = _row(site, name)
        if enabled and not row.enabled:
            row.next_run = next_time(row.schedule, site.now())
        row.enabled = enabled
    return _info(site, name)


def _info(site: Site, name: str) -> TaskInfo:
    return next(info for info in list_tasks(site) if info.name == name)


# --- running ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TaskRun:
    """The outcome of one attempt: ``ok``, ``failed`` or ``locked`` (skipped: another runner
    holds it). ``result`` is the task's one-line result, the error, or who holds the lock."""

    name: str
    component: str
    status: str
    result: str = ""
    duration: float = 0.0

    def line(self) -> Text:
        """The run in one line (the CLI prints it, the tasks page flashes it translated)."""
        seconds = f"{self.duration:.2f}"
        if self.status == OK:
            done = Text("%(name)s: ok in %(seconds)s s", name=self.name, seconds=seconds)
            return Text.join("; ", [done, self.result]) if self.result else done
        if self.status == FAILED:
            return Text(
                "%(name)s: failed after %(seconds)s s: %(error)s",
                name=self.name,
                seconds=seconds,
                error=self.result,
            )
        return Text("%(name)s: skipped, %(why)s", name=self.name, why=self.result)


def lease_seconds() -> int:
    """How long a task lock lasts without renewal: ``ENROLKIT_TASK_LEASE`` or 60 s. Shorter
    frees a killed runner's tasks sooner; longer tolerates a database that stalls the renewal
    (every third of the lease) for longer."""
    text = os.environ.get("ENROLKIT_TASK_LEASE", "").strip()
    if not text:
        return DEFAULT_LEASE
    low, high = LEASE_RANGE
    if not text.isdigit() or not low <= int(text) <= high:
        raise EnrolkitError(
            f"ENROLKIT_TASK_LEASE: {text[:20]!r} is not a number of seconds from {low} to {high}"
        )
    return int(text)


def node_id() -> str:
    """This machine as lock owners name it: the host name, and the PID namespace when there is
    one to read, so two containers sharing a host name never judge each other's processes."""
    host = socket.gethostname()
    try:
        namespace = os.readlink("/proc/self/ns/pid")  # "pid:[4026531836]"
    except OSError:
        return host
    return f"{host}/{namespace.removeprefix('pid:[').rstrip(']')}"


def runner_id() -> str:
    """``node:pid:random``: who holds a lock, readable by an admin looking for the process."""
    return f"{node_id()}:{os.getpid()}:{secrets.token_hex(4)}"[-200:]


FREE, GONE, HELD = "free", "gone", "held"


def lock_state(owner: str, until: int, now: int) -> str:
    """Whether a task lock is ``free``, ``gone`` (its holder ran on this node and its process
    has ended: free too, and worth logging) or ``held``.

    A holder on this node is judged by its process, which is surer than its lease: one alive
    keeps the lock even if a long write on SQLite delayed the renewal past the lease. A holder
    elsewhere is judged by its lease alone.
    """
    if not owner:
        return FREE
    if _on_this_node(owner):
        return GONE if owner_is_gone(owner) else HELD
    return FREE if until < now else HELD


def _on_this_node(owner: str) -> bool:
    return owner.partition(":")[0] == node_id()


def owner_is_gone(owner: str) -> bool:
    """Whether ``owner`` (see :func:`runner_id`) ran on this node and its process has ended.
    An owner elsewhere, or one that cannot be read, is never judged gone: its lease decides."""
    node, _, rest = owner.partition(":")
    pid, _, _token = rest.partition(":")
    if node != node_id() or not pid.isdigit():
        return False
    return not _process_alive(int(pid))


def _process_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    try:  # killed but not yet reaped by its parent: gone all the same
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


class Runner:
    """Runs tasks for one process. Every task runs in a site of its own with origin ``cron``."""

    def __init__(self, runtime: Runtime, owner: str | None = None) -> None:
        self.runtime = runtime
        self.owner = owner or runner_id()
        self.lease = lease_seconds()
        # Lock and bookkeeping statements write: on SQLite they take the write lock up front.
        self.writer = runtime.db.execution_options(enrolkit_write=True)

    def cron(self, *, force: bool = False) -> Iterator[TaskRun]:
        """One cron run: sync the registry, fire ``on_cron``, then run each due enabled task
        (``force``: each enabled task) unless another runner holds it. Yields each outcome."""
        with self.runtime.site(origin="cron") as site:
            sync(site)
            now = site.now()
            hook_failure = self._fire_on_cron(site, now)
            due = select(ScheduledTask.name).where(
                ScheduledTask.enabled.is_(True),
                ScheduledTask.name.in_(list(site.plugins.tasks)),
            )
            if not force:
                due = due.where(ScheduledTask.next_run <= now)
            names = list(site.session.scalars(due.order_by(ScheduledTask.next_run, "name")))
        if hook_failure:
            yield hook_failure
        for name in names:
            outcome = self._attempt(name, due_only=not force, enabled_only=True)
            if outcome is not None:
                yield outcome

    def run(self, name: str) -> TaskRun:
        """Run one task now, due or not, enabled or not (an admin asked for it)."""
        with self.runtime.site(origin="cron") as site:
            _row(site, name)
        outcome = self._attempt(name, due_only=False, enabled_only=False)
        if outcome is None:  # the row vanished between the two statements: nothing to run
            raise NotFound(f"no scheduled task {name!r}")
        return outcome

    def _fire_on_cron(self, site: Site, now: int) -> TaskRun | None:
        started = time.monotonic()
        try:
            with site.atomic():
                site.plugins.on_cron(site=site, now=now)
        except Exception as exc:
            error = describe_error(exc)
            with site.atomic():
                log.record(site, "cron_failed", "core", reason=f"on_cron: {error}")
            return TaskRun("on_cron", "core", FAILED, error, time.monotonic() - started)
        return None

    def _attempt(self, name: str, *, due_only: bool, enabled_only: bool) -> TaskRun | None:
        """Take the lock and run; a locked task is reported, one no longer due is silently
        left (another runner has just run it)."""
        spec = self.runtime.plugins.tasks[name]
        now = clock.now()
        if not self._acquire(spec, now, due_only=due_only, enabled_only=enabled_only):
            return self._why_not(spec, now)
        started_at, started = now, time.monotonic()
        lease = _Lease(self, spec.name)
        try:
            with lease:
                result = self._execute(spec)
            # A Text keeps its message id (str() would drop it): pages show it translated.
            text = result if isinstance(result, str) else "" if result is None else str(result)
            status = OK
        except Exception as exc:
            status, text = FAILED, describe_error(exc)
        except BaseException:  # Ctrl-C or exit: free the lock for the next runner, then go
            interrupted = Text("failed: %(error)s", error=Text("interrupted"))
            self._release(spec, started_at, interrupted, time.monotonic() - started)
            raise
        duration = time.monotonic() - started
        last_result = (
            (text or Text("ok")) if status == OK else Text("failed: %(error)s", error=text)
        )
        if not self._release(spec, started_at, last_result, duration) or lease.lost:
            print(
                f"enrolkit: warning: task {name} lost its lock while it ran (freed with "
                f"`enrolkit task unlock`, or not renewed within {self.lease} s); another runner "
                "may have started it",
                file=sys.stderr,
            )
        if status == FAILED:
            with self.runtime.site(origin="cron") as site, site.atomic():
                log.record(site, "task_failed", spec.component, reason=f"{name}: {text}")
        return TaskRun(name, spec.component, status, text, duration)

    def _execute(self, spec: TaskSpec):
        with self.runtime.site(origin="cron") as site:
            try:
                result = spec.run(site)
                site.session.commit()  # work the task left outside site.atomic()
            except BaseException:
                site.session.rollback()
                raise
        return result

    def _acquire(self, spec: TaskSpec, now: int, *, due_only: bool, enabled_only: bool) -> bool:
        """Read the lock, judge it (:func:`lock_state`), and take it with one UPDATE that holds
        only if the row still has the owner and expiry read: two runners judging the same lock
        never both take it. Taking over a dead runner's lock is logged."""
        col = tasks_table.c
        with self.writer.begin() as conn:
            read = conn.execute(
                select(col.lock_owner, col.lock_until).where(col.name == spec.name)
            ).one_or_none()
            holder, until = read if read is not None else ("", 0)
            state = lock_state(holder, until, now)
            if state == HELD:
                return False
            stmt = (
                update(tasks_table)
                .where(col.name == spec.name, col.lock_owner == holder, col.lock_until == until)
                .values(lock_owner=self.owner, lock_until=now + self.lease)
            )
            if due_only:
                stmt = stmt.where(col.next_run <= now)
            if enabled_only:
                stmt = stmt.where(col.enabled.is_(True))
            taken = conn.execute(stmt).rowcount == 1
        if taken and state == GONE:
            with self.runtime.site(origin="cron") as site, site.atomic():
                log.record(
                    site,
                    "task_lock_taken_over",
                    spec.component,
                    reason=f"{spec.name}: the lock of {holder} (process gone) taken by {self.owner}",
                )
        return taken

    def renew(self, name: str) -> bool:
        """Extend our lock on ``name`` by one lease from now; False if it is no longer ours."""
        col = tasks_table.c
        stmt = (
            update(tasks_table)
            .where(col.name == name, col.lock_owner == self.owner)
            .values(lock_until=clock.now() + self.lease)
        )
        with self.writer.begin() as conn:
            return conn.execute(stmt).rowcount == 1

    def _why_not(self, spec: TaskSpec, now: int) -> TaskRun | None:
        with self.runtime.db.connect() as conn:
            owner, until = conn.execute(
                select(tasks_table.c.lock_owner, tasks_table.c.lock_until).where(
                    tasks_table.c.name == spec.name
                )
            ).one()
        if lock_state(owner, until, now) != HELD:
            return None
        if until >= now:
            held = Text("locked by %(owner)s until %(until)s", owner=owner, until=clock.iso(until))
        else:
            held = Text(
                "locked by %(owner)s, alive on this machine (its lease ran out %(until)s)",
                owner=owner,
                until=clock.iso(until),
            )
        return TaskRun(spec.name, spec.component, LOCKED, held)

    def _release(self, spec: TaskSpec, started_at: int, last_result: str, duration: float) -> bool:
        """Record the run and free the lock, if it is still ours."""
        col = tasks_table.c
        with self.writer.begin() as conn:
            schedule = conn.execute(select(col.schedule).where(col.name == spec.name)).scalar()
            stmt = (
                update(tasks_table)
                .where(col.name == spec.name, col.lock_owner == self.owner)
                .values(
                    lock_owner="",
                    lock_until=0,
                    last_run=started_at,
                    next_run=next_time(schedule, clock.now()),
                    last_duration=round(duration, 3),
                    last_result=last_result,
                )
            )
            return conn.execute(stmt).rowcount == 1


class _Lease:
    """Keeps a runner's lock alive while its task runs: a thread renews it every third of the
    lease, on a database connection of its own (the task's transaction may be long). A renewal
    that fails (a busy database) is tried again at the next beat; one that finds the lock no
    longer ours stops, and :attr:`lost` says so."""

    def __init__(self, runner: Runner, name: str) -> None:
        self.runner, self.name = runner, name
        self.interval = max(runner.lease / 3, 0.5)
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease:{name}", daemon=True)

    def __enter__(self) -> _Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self.interval)

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                if not self.runner.renew(self.name):
                    self.lost = True
                    return
            except Exception:  # noqa: BLE001 - a lock wait or a dropped connection: next beat
                continue


def unlock(site: Site, name: str, *, force: bool = False, by: str = "") -> str:
    """Free a task's lock by hand (``enrolkit task unlock``), logged as ``task_unlocked`` with
    who did it and whose lock it was. Returns the former holder ('' if it was free).

    A holder running on this node whose process is alive is refused unless ``force``: the task
    is really running, and freeing its lock would let a second runner start it. (A holder on
    another node cannot be checked from here; the operator is trusted to have looked.)
    """
    with site.atomic():
        row = _row(site, name)
        holder, until = row.lock_owner, row.lock_until
        state = lock_state(holder, until, site.now())
        if state == FREE:  # nobody, or a lease that ran out elsewhere: nothing to free
            return ""
        if state == HELD and _on_this_node(holder) and not force:
            raise Refused(
                f"task {name} is running in process {holder.split(':')[1]} on this machine "
                f"(lock {holder}); stop that process first, or use --force"
            )
        row.lock_owner, row.lock_until = "", 0
        who = by or site.actor or operator()
        log.record(
            site, "task_unlocked", row.component, reason=f"{name}: lock of {holder} freed by {who}"
        )
    return holder


def failure(where: Any, exc: Exception) -> Text:
    """One part of a task that failed (``instance 12: ...``), for :func:`summary`."""
    if isinstance(where, int):
        where = Text("instance %(id)d", id=where)
    return Text("%(where)s: %(error)s", where=where, error=describe_error(exc))


def summary(done: Text, failures: Sequence[Any] = ()) -> Text:
    """A task's one-line result: what it did; when a part failed, raised as the error that marks
    the run failed, saying both (``...; failed: instance 12: ...``). A :class:`Text`, so the
    admin pages show it in their reader's language."""
    if failures:
        raise EnrolkitError(
            Text("%(done)s; failed: %(failures)s", done=done, failures=Text.join("; ", failures))
        )
    return done


def operator() -> str:
    """``user@host`` of the person at this shell, for the log."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (a container's arbitrary uid)
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def describe_error(exc: Exception) -> str:
    """One line: the message of an error a user can act on; for a bug, its type and where.

    A database error's own text (the statement, the constraint, the driver's words) is kept out
    of it: the line is stored as the task's result, which the web admin and the API show. The
    error goes, whole, to the runner's log (stderr) instead."""
    from sqlalchemy.exc import SQLAlchemyError

    from .db import busy

    found = exc if isinstance(exc, SQLAlchemyError) else exc.__cause__
    if isinstance(found, SQLAlchemyError):
        _log.error("a task failed on the database", exc_info=exc)
        if busy(found):
            return Text("the database stayed busy; the next run tries again")
        return Text("database error; the runner's log (stderr) has the details")
    if isinstance(exc, EnrolkitError):  # a Text keeps its message id, for the reader's language
        text = message(exc)
        return text if isinstance(text, Text) and not exc.cli else str(exc)
    where = ""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    if tb is not None:
        where = f" (at {os.path.basename(tb.tb_frame.f_code.co_filename)}:{tb.tb_lineno})"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}{where}"
