"""Scheduled tasks, the event log, the mail outbox and the plans held by the mass-removal guard."""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from ... import log, lookup, tasks
from ...errors import EnrolkitError
from ...models import Course, EnrolInstance, HeldPlan, MailMessage, User
from ..guards import admin_required, site
from ..i18n import message_of, read_time, say
from ..views import page_number, page_size
from . import bp

#: Log rows shown at most, newest first.
LOG_LIMIT = 500


@bp.get("/tasks")
@admin_required
def task_list():
    return render_template("admin/tasks.html", tasks=tasks.list_tasks(site()))


@bp.post("/tasks/<name>")
@admin_required
def task_update(name: str):
    s = site()
    try:
        tasks.set_schedule(s, name, request.form.get("schedule", ""))
        tasks.set_enabled(s, name, bool(request.form.get("enabled")))
    except EnrolkitError as exc:
        s.session.rollback()
        say(message_of(exc), "error")
    else:
        flash(_("Task %(name)s saved.", name=name), "success")
    return redirect(url_for("admin.task_list"))


@bp.post("/tasks/<name>/run")
@admin_required
def task_run(name: str):
    """Run now, in this request, under the task's database lock like any cron run."""
    if name not in site().plugins.tasks:
        abort(404)
    site().session.rollback()  # no read transaction held open while the task writes
    try:
        outcome = tasks.Runner(current_app.extensions["enrolkit"]).run(name)
    except EnrolkitError as exc:
        say(message_of(exc), "error")
    else:
        say(outcome.line(), "success" if outcome.status == "ok" else "error")
    return redirect(url_for("admin.task_list"))


@bp.get("/logs")
@admin_required
def logs():
    s = site()
    args = {key: request.args.get(key, "").strip() for key in (
        "component", "event", "course", "user", "since", "until")}  # fmt: skip
    error = None
    rows = []
    try:
        course_id = lookup.course(s.session, args["course"]).id if args["course"] else None
        user_id = lookup.user(s.session, args["user"]).id if args["user"] else None
        rows = log.query(
            s,
            component=args["component"] or None,
            event=args["event"] or None,
            course_id=course_id,
            user_id=user_id,
            since=read_time(args["since"], "since") or None,
            until=read_time(args["until"], "until") or None,
            limit=LOG_LIMIT,
        )
    except EnrolkitError as exc:
        error = str(exc)
    return render_template("admin/logs.html", rows=rows, args=args, error=error, limit=LOG_LIMIT), (
        400 if error else 200
    )


@bp.get("/mail")
@admin_required
def mail():
    s = site()
    status = request.args.get("status", "")
    stmt = select(MailMessage)
    if status:
        stmt = stmt.where(MailMessage.status == status)
    page, size = page_number(), page_size()
    total = s.session.scalar(select(func.count()).select_from(stmt.subquery()))
    messages = s.session.scalars(
        stmt.order_by(MailMessage.id.desc()).limit(size).offset((page - 1) * size)
    ).all()
    return render_template(
        "admin/mail.html", messages=messages, status=status, page=page, size=size, total=total
    )


@bp.get("/mail/<int:message_id>")
@admin_required
def mail_message(message_id: int):
    message = site().session.get(MailMessage, message_id)
    if message is None:
        abort(404)
    return render_template("admin/mail_message.html", message=message)


@bp.get("/plans")
@admin_required
def plans():
    s = site()
    status = request.args.get("status", "held")
    rows = s.session.execute(
        select(HeldPlan, EnrolInstance, Course)
        .join(EnrolInstance, EnrolInstance.id == HeldPlan.instance_id)
        .join(Course, Course.id == EnrolInstance.course_id)
        .where(HeldPlan.status == status)
        .order_by(HeldPlan.id.desc())
        .limit(200)
    ).all()
    return render_template("admin/plans.html", rows=rows, status=status)


#: Users listed per kind of change on a plan's page.
DIFF_LIMIT = 200


@bp.get("/plans/<int:plan_id>")
@admin_required
def plan(plan_id: int):
    s = site()
    held = s.session.get(HeldPlan, plan_id)
    if held is None:
        abort(404)
    instance = s.session.get(EnrolInstance, held.instance_id)
    course = s.session.get(Course, instance.course_id)
    payload = held.payload or {}

    def names(ids):
        ids = list(ids or [])[:DIFF_LIMIT]
        found = dict(
            s.session.execute(select(User.id, User.username).where(User.id.in_(ids))).all()
        )
        return [found.get(i, f"#{i}") for i in ids]

    return render_template(
        "admin/plan.html",
        held=held,
        instance=instance,
        course=course,
        unenrolled=names(payload.get("unenrolled")),
        suspended=names(payload.get("suspended")),
        desired=len(payload.get("rows") or []),
        limit=DIFF_LIMIT,
    )


@bp.post("/plans/<int:plan_id>/<any(approve, discard):decision>")
@admin_required
def decide_plan(plan_id: int, decision: str):
    s = site()
    try:
        if decision == "approve":
            outcome = s.engine.approve(plan_id)
            flash(
                _(
                    "Plan %(id)d applied: %(enrolled)d enrolled, %(unenrolled)d unenrolled, "
                    "%(suspended)d suspended.",
                    id=plan_id,
                    enrolled=len(outcome.enrolled),
                    unenrolled=len(outcome.unenrolled),
                    suspended=len(outcome.suspended),
                ),
                "success",
            )
        else:
            s.engine.discard(plan_id)
            flash(_("Plan %(id)d discarded.", id=plan_id), "success")
    except EnrolkitError as exc:
        say(message_of(exc), "error")
    return redirect(url_for("admin.plan", plan_id=plan_id))


@bp.get("/pending")
@admin_required
def pending_page():
    from ..pending_view import rows

    username = request.args.get("user", "").strip()
    return render_template(
        "admin/pending.html", rows=rows(site(), username=username), username=username
    )
