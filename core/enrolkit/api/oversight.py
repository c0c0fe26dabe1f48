"""Oversight: scheduled tasks and cron runs, the event log, and the plans the mass-removal guard
held for an admin."""

from __future__ import annotations

from flask import current_app
from flask_smorest import Page
from sqlalchemy import select

from .. import lookup, tasks
from ..errors import NotFound
from ..models import Course, EnrolInstance, HeldPlan, LogEntry, User
from . import schemas as s
from .common import ID, FieldError, Query, SqlPage, blueprint, site
from .enrolling import outcome_row

task_bp = blueprint("tasks", "Scheduled tasks and cron runs (`enrolkit task`, `enrolkit cron`).")
log_bp = blueprint("log", "The event log (`enrolkit log`).")
plans = blueprint("plans", "Plans held by the mass-removal guard (`enrolkit plan`).")


def _task_row(info: tasks.TaskInfo) -> dict:
    return {
        "name": info.name,
        "component": info.component,
        "schedule": info.schedule,
        "default_schedule": info.default_schedule,
        "enabled": info.enabled,
        "last_run": info.last_run,
        "next_run": info.next_run,
        "last_duration": info.last_duration,
        "last_result": info.last_result,
        "locked_by": info.locked_by,
        "lock_until": info.lock_until,
    }


def _run_row(run: tasks.TaskRun) -> dict:
    return {
        "name": run.name,
        "component": run.component,
        "status": run.status,
        "result": run.result,
        "duration": run.duration,
    }


def _runner() -> tasks.Runner:
    return tasks.Runner(current_app.extensions["enrolkit"])


@task_bp.get("/tasks")
@task_bp.response(200, s.Task(many=True))
@task_bp.paginate(Page)
@task_bp.reads()
def list_tasks():
    """Every task: schedule (UTC), enabled, last and next run, last result, lock."""
    return [_task_row(info) for info in tasks.list_tasks(site())]


def _task(name: str) -> dict:
    for info in tasks.list_tasks(site()):
        if info.name == name:
            return _task_row(info)
    raise NotFound(f"no scheduled task {name!r}")


@task_bp.get("/tasks/<name>")
@task_bp.response(200, s.Task)
@task_bp.reads(404)
def get_task(name):
    return _task(name)


@task_bp.patch("/tasks/<name>")
@task_bp.arguments(s.TaskChange)
@task_bp.response(200, s.Task)
@task_bp.writes(404, 422)
def change_task(args, name):
    """Change a task's schedule, or enable or disable it."""
    _task(name)
    if "schedule" in args:
        try:
            tasks.set_schedule(site(), name, args["schedule"])
        except tasks.ScheduleError as exc:
            raise FieldError("schedule", str(exc)) from None
    if "enabled" in args:
        tasks.set_enabled(site(), name, args["enabled"])
    return _task(name)


@task_bp.post("/tasks/<name>/run")
@task_bp.response(200, s.TaskRun)
@task_bp.writes(404)
def run_task(name):
    """Run one task now (even if disabled), under its lock; a failure is reported in `status`."""
    _task(name)
    site().session.rollback()  # the runner writes from its own connections
    return _run_row(_runner().run(name))


@task_bp.post("/cron")
@task_bp.arguments(s.CronIn)
@task_bp.response(200, s.TaskRun(many=True))
@task_bp.writes()
def cron(args):
    """One cron run, as `enrolkit cron`: the due tasks (`force`: every enabled task)."""
    return [_run_row(run) for run in _runner().cron(force=args["force"])]


# --- log ---------------------------------------------------------------------------------------


@log_bp.get("/log")
@log_bp.arguments(s.LogQuery, location="query")
@log_bp.response(200, s.LogEntry(many=True))
@log_bp.paginate(SqlPage)
@log_bp.reads(404)
def log(args):
    """The event log, newest first: every change with who or what made it and why."""
    session = site().session
    stmt = (
        select(LogEntry, User.username, Course.shortname)
        .outerjoin(User, User.id == LogEntry.user_id)
        .outerjoin(Course, Course.id == LogEntry.course_id)
        .order_by(LogEntry.id.desc())
    )
    if args.get("component"):
        stmt = stmt.where(LogEntry.component == args["component"])
    if args.get("event"):
        stmt = stmt.where(LogEntry.event == args["event"])
    if args.get("course"):
        stmt = stmt.where(LogEntry.course_id == lookup.course(session, args["course"]).id)
    if args.get("username"):
        stmt = stmt.where(LogEntry.user_id == lookup.user(session, args["username"]).id)
    if args.get("since"):
        stmt = stmt.where(LogEntry.time >= args["since"])
    if args.get("until"):
        stmt = stmt.where(LogEntry.time < args["until"])
    return Query(stmt, _log_row, scalars=False)


def _log_row(row) -> dict:
    entry, username, course = row
    return {
        "id": entry.id,
        "time": entry.time,
        "event": entry.event,
        "component": entry.component,
        "course": course,
        "username": username,
        "instance": entry.instance_id,
        "origin": entry.origin,
        "reason": entry.reason,
    }


# --- held plans --------------------------------------------------------------------------------


def _plan_row(held: HeldPlan) -> dict:
    session = site().session
    instance = session.get(EnrolInstance, held.instance_id)
    course = session.get(Course, instance.course_id) if instance else None
    return {
        "id": held.id,
        "status": held.status,
        "instance": held.instance_id,
        "method": instance.method if instance else None,
        "course": course.shortname if course else None,
        "created": held.timecreated,
        "origin": held.origin,
        "reason": held.reason,
        "summary": held.summary,
        "decided": held.timedecided,
        "decided_by": held.decided_by,
    }


def _held(plan_id: int) -> HeldPlan:
    held = site().session.get(HeldPlan, plan_id)
    if held is None:
        raise NotFound(f"no held plan {plan_id}")
    return held


@plans.get("/plans")
@plans.arguments(s.PlanQuery, location="query")
@plans.response(200, s.Plan(many=True))
@plans.paginate(SqlPage)
@plans.reads()
def list_plans(args):
    """Plans newest first; by default only those still held."""
    stmt = select(HeldPlan).order_by(HeldPlan.id.desc())
    if args["status"] != "all":
        stmt = stmt.where(HeldPlan.status == args["status"])
    return Query(stmt, _plan_row)


@plans.get(f"/plans/<{ID}:plan_id>")
@plans.response(200, s.PlanDetail)
@plans.reads(404)
def get_plan(plan_id):
    """A plan, with the users it would unenrol or suspend."""
    held = _held(plan_id)
    row = _plan_row(held)
    unenrol = held.payload.get("unenrolled", [])
    suspend = held.payload.get("suspended", [])
    names = dict(
        site()
        .session.execute(select(User.id, User.username).where(User.id.in_(unenrol + suspend)))
        .all()
    )
    row["would_unenrol"] = [names.get(i, str(i)) for i in unenrol]
    row["would_suspend"] = [names.get(i, str(i)) for i in suspend]
    return row


@plans.post(f"/plans/<{ID}:plan_id>/approve")
@plans.response(200, s.Outcome)
@plans.writes(404, 422)
def approve(plan_id):
    """Apply the held plan as it was computed."""
    _held(plan_id)
    return outcome_row(site().engine.approve(plan_id))


@plans.post(f"/plans/<{ID}:plan_id>/discard")
@plans.response(200, s.Plan)
@plans.writes(404, 422)
def discard(plan_id):
    """Drop the held plan without applying it."""
    site().engine.discard(_held(plan_id).id)
    return _plan_row(_held(plan_id))
