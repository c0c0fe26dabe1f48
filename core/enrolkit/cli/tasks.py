"""Scheduled tasks: ``enrolkit cron`` and ``enrolkit task list|run|set|enable|disable|unlock``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .. import clock
from . import cli, fail
from .output import emit, json_option, open_site, runtime

if TYPE_CHECKING:
    from ..tasks import TaskInfo


@cli.command("cron")
@click.option("--force", is_flag=True, help="Run every enabled task now, due or not.")
def cron(force):
    """Run the scheduled tasks that are due, then exit (call it from system cron or a timer).

    A task another runner is running is skipped (and said so). Exits non-zero when a task
    failed; the failure is logged (event task_failed) and the task runs again at its next time.
    """
    from ..tasks import FAILED, Runner

    failed = []
    ran = 0
    for outcome in Runner(runtime()).cron(force=force):
        click.echo(outcome.line())
        ran += 1
        if outcome.status == FAILED:
            failed.append(outcome.name)
    if not ran:
        click.echo("no task due")
    if failed:
        fail(
            f"{len(failed)} task(s) failed: {', '.join(failed)}; "
            "see `enrolkit log --event task_failed`"
        )


@cli.group()
def task():
    """Scheduled tasks: schedules, last and next runs, results."""


def _row(info: TaskInfo, as_json: bool) -> dict:
    row = {
        "name": info.name,
        "component": info.component,
        "schedule": info.schedule,
        "enabled": info.enabled,
        "last_run": info.last_run,
        "next_run": info.next_run,
        "duration": info.last_duration,
        "last_result": info.last_result,
    }
    if as_json:
        row.update(
            default_schedule=info.default_schedule,
            locked_by=info.locked_by,
            lock_until=info.lock_until,
        )
    return row


@task.command("list")
@json_option
def task_list(as_json):
    """Every task: schedule (UTC), enabled, last and next run, duration (s) and last result."""
    from ..tasks import list_tasks

    with open_site() as site:
        emit(
            [_row(info, as_json) for info in list_tasks(site)],
            as_json,
            times=("last_run", "next_run"),
        )


@task.command("run")
@click.argument("name")
def task_run(name):
    """Run one task now (even if disabled), under its lock."""
    from ..tasks import OK, Runner

    outcome = Runner(runtime()).run(name)
    if outcome.status == OK:
        click.echo(outcome.line())
    else:
        fail(outcome.line())


@task.command("set")
@click.argument("name")
@click.argument("schedule", metavar='"CRON EXPR"')
def task_set(name, schedule):
    """Change a task's schedule: 5 cron fields in UTC, e.g. "*/10 * * * *"."""
    from ..tasks import set_schedule

    with open_site() as site:
        info = set_schedule(site, name, schedule)
    click.echo(f"{info.name}: schedule {info.schedule!r}, next run {clock.iso(info.next_run)}")


@task.command("enable")
@click.argument("name")
def task_enable(name):
    """Let cron run a task again (from its next scheduled time)."""
    from ..tasks import set_enabled

    with open_site() as site:
        info = set_enabled(site, name, True)
    click.echo(f"{info.name}: enabled, next run {clock.iso(info.next_run)}")


@task.command("disable")
@click.argument("name")
def task_disable(name):
    """Stop cron from running a task (``task run`` still can)."""
    from ..tasks import set_enabled

    with open_site() as site:
        info = set_enabled(site, name, False)
    click.echo(f"{info.name}: disabled")


@task.command("unlock")
@click.argument("name")
@click.option(
    "--force", is_flag=True, help="Free it even though its process on this machine is alive."
)
def task_unlock(name, force):
    """Free a task's lock now, for a runner that died holding it (logged as task_unlocked).

    A killed runner's lock frees itself within ENROLKIT_TASK_LEASE seconds (60), and at once
    for the next runner on the same machine; this is for when waiting is not an option.
    """
    from ..tasks import unlock

    with open_site() as site:
        holder = unlock(site, name, force=force)
    click.echo(f"{name}: unlocked (was locked by {holder})" if holder else f"{name}: not locked")
