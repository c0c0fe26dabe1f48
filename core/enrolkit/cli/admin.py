"""Oversight: plans held by the mass-removal guard, and the log."""

from __future__ import annotations

import json

import click

from .. import clock
from . import cli
from .output import emit, instance_names, json_option, open_site, when


@cli.group()
def plan():
    """Plans held by the mass-removal guard."""


def _plan_row(site, held) -> dict:
    from ..models import Course, EnrolInstance

    inst = site.session.get(EnrolInstance, held.instance_id)
    course = site.session.get(Course, inst.course_id) if inst else None
    method = site.plugins.methods.get(inst.method) if inst else None
    return {
        "id": held.id,
        "status": held.status,
        "instance": held.instance_id,
        "instance_name": (method.display_name(inst) if method else inst.name) if inst else None,
        "method": inst.method if inst else None,
        "course": course.shortname if course else None,
        "created": held.timecreated,
        "origin": held.origin,
        "reason": held.reason,
        "summary": held.summary,
    }


def _why(summary: dict) -> str:
    """The guard's own words for holding a plan (its summary's ``why``)."""
    return str(summary.get("why", "")) if isinstance(summary, dict) else ""


@plan.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include approved and discarded plans.")
@json_option
def plan_list(show_all, as_json):
    """Held plans (newest first)."""
    from sqlalchemy import select

    from ..models import HeldPlan

    with open_site() as site:
        stmt = select(HeldPlan).order_by(HeldPlan.id.desc())
        if not show_all:
            stmt = stmt.where(HeldPlan.status == "held")
        rows = [_plan_row(site, h) for h in site.session.scalars(stmt)]
    if as_json:
        emit(rows, as_json)
        return
    for row in rows:
        row["why"] = _why(row["summary"])
    columns = ["id", "status", "course", "method", "instance_name", "created", "origin", "why"]
    emit(rows, as_json, columns, times=("created",))


@plan.command("show")
@click.argument("plan_id", type=int)
@json_option
def plan_show(plan_id, as_json):
    """A held plan and the users it would remove."""
    from sqlalchemy import select

    from .. import lookup
    from ..models import HeldPlan, User

    with open_site() as site:
        held = site.session.get(HeldPlan, plan_id)
        if held is None:
            raise lookup.NotFound(f"no held plan {plan_id}; see enrolkit plan list")
        row = _plan_row(site, held)
        ids = held.payload.get("unenrolled", []) + held.payload.get("suspended", [])
        names = (
            dict(site.session.execute(select(User.id, User.username).where(User.id.in_(ids))).all())
            if ids
            else {}
        )
        row["would_unenrol"] = [names.get(i, i) for i in held.payload.get("unenrolled", [])]
        row["would_suspend"] = [names.get(i, i) for i in held.payload.get("suspended", [])]
    if as_json:
        click.echo(json.dumps(row, indent=2))
        return
    for key in ("id", "status", "course", "method", "origin", "reason"):
        click.echo(f"{key}: {row[key]}")
    click.echo(f"instance: {row['instance_name']} (id {row['instance']})")
    click.echo(f"created: {when(row['created'])} UTC")
    click.echo(f"why held: {_why(row['summary'])}")
    for key in ("would_unenrol", "would_suspend"):
        if row[key]:
            click.echo(
                f"{key.replace('_', ' ')} ({len(row[key])}): "
                + ", ".join(map(str, row[key][:50]))
                + (" ..." if len(row[key]) > 50 else "")
            )


@plan.command("approve")
@click.argument("plan_id", type=int)
def plan_approve(plan_id):
    """Apply a held plan."""
    with open_site() as site:
        outcome = site.engine.approve(plan_id)
    counts = ", ".join(f"{v} {k}" for k, v in outcome.counts().items() if v) or "no changes"
    click.echo(f"plan {plan_id} applied: {counts}")


@plan.command("discard")
@click.argument("plan_id", type=int)
def plan_discard(plan_id):
    """Drop a held plan without applying it."""
    with open_site() as site:
        site.engine.discard(plan_id)
    click.echo(f"plan {plan_id} discarded")


@cli.command("log")
@click.option("--component", help="e.g. core, enrol_cohort")
@click.option("--event", help="e.g. user_enrolled")
@click.option("--course", "shortname", help="Course shortname.")
@click.option("--user", "username", help="Username.")
@click.option("--since", help="Unix seconds or ISO 8601.")
@click.option("--until", help="Unix seconds or ISO 8601.")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=1000, show_default=True)
@json_option
def log_command(component, event, shortname, username, since, until, limit, as_json):
    """The event log, newest first."""
    from .. import lookup
    from ..log import query

    with open_site() as site:
        course_id = lookup.course(site.session, shortname).id if shortname else None
        user_id = lookup.user(site.session, username).id if username else None
        rows = query(
            site,
            component=component,
            event=event,
            course_id=course_id,
            user_id=user_id,
            since=clock.parse_time(since, field="--since"),
            until=clock.parse_time(until, field="--until"),
            limit=limit,
        )
        out = [
            {
                "time": entry.time,
                "event": entry.event,
                "component": entry.component,
                "course": course,
                "user": user,
                "instance": entry.instance_id,
                "origin": entry.origin,
                "reason": entry.reason,
            }
            for entry, user, course in rows
        ]
        if not as_json:
            names = instance_names(site, (row["instance"] for row in out))
            for row in out:
                row["instance"] = names.get(row["instance"], "")
    emit(out, as_json, times=("time",))
