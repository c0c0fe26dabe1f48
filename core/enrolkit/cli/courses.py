"""Courses and what happens in them: views, completions, enrolment instances, enrolments."""

from __future__ import annotations

import json
import sys

import click

from .. import clock
from . import cli
from .output import emit, instance_names, json_option, open_site
from .people import report_import, strict_option


def _time(value: str | None, field: str) -> int | None:
    return clock.parse_time(value, field=field) if value else None


def _outcome_line(outcome) -> str:
    if outcome is None:
        return "no enrolment changes"
    if outcome.held_plan_id:
        return (
            f"held as plan {outcome.held_plan_id} for an admin (mass removal): "
            f"see enrolkit plan show {outcome.held_plan_id}"
        )
    counts = ", ".join(f"{v} {k}" for k, v in outcome.counts().items() if v)
    prefix = "would change: " if outcome.dry_run else ""
    return prefix + (counts or "no enrolment changes")


@cli.group()
def course():
    """Courses: import, view, complete."""


@course.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@strict_option
def course_import(file, strict):
    """Create or update courses from CSV: shortname,fullname[,idnumber,category,startdate,
    enddate,enablecompletion]; missing categories are created."""
    from .. import catalog

    with open_site() as site:
        report_import("courses", *catalog.import_courses(site, file, strict=strict))


@course.command("delete")
@click.argument("shortname", metavar="COURSE")
def course_delete(shortname):
    """Delete a course with its enrolments, groups and roles; meta links whose source it is go
    too."""
    from .. import lookup
    from ..deletion import delete_course

    with open_site() as site:
        unenrolled = delete_course(site, lookup.course(site.session, shortname))
    click.echo(f"{shortname} deleted; {unenrolled} enrolment(s) removed")


@course.command("view")
@click.argument("username")
@click.argument("shortname", metavar="COURSE")
@json_option
def course_view(username, shortname, as_json):
    """Open a course as a user (fires on_course_view): granted, denied or confirm. A course
    offering several enrolments lists each, with its instance id and the fields it asks."""
    from .. import access, confirmation, lookup

    with open_site() as site:
        decision = access.view_course(
            site, lookup.user(site.session, username), lookup.course(site.session, shortname)
        )
        offers = [
            {
                "instance_id": offer.instance_id,
                "reason": offer.reason,
                "fields": confirmation.fields_of(site, offer.instance_id),
            }
            for offer in decision.offers
        ]
    if as_json:
        row = {"decision": decision.decision, "reason": decision.reason}
        click.echo(json.dumps({**row, "offers": offers} if offers else row))
        return
    click.echo(f"{decision.decision}: {decision.reason}" if decision.reason else decision.decision)
    if len(offers) > 1 or any(offer["fields"] for offer in offers):
        for offer in offers:
            asks = ", ".join(field["name"] for field in offer["fields"])
            click.echo(
                f"  instance {offer['instance_id']}: {offer['reason']}"
                + (f" (asks: {asks})" if asks else "")
            )


@course.command("enrol-me")
@click.argument("username")
@click.argument("shortname", metavar="COURSE")
@click.option(
    "--instance",
    "instance_id",
    type=int,
    help="The offer to accept, by instance id, when the course makes several.",
)
@click.option(
    "--field",
    "pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="What the method asks (e.g. --field key=VALUE); KEY=- reads the value from stdin "
    "(asked without echo at a terminal), so a secret stays out of the shell history and the "
    "process list.",
)
def course_enrol_me(username, shortname, instance_id, pairs):
    """Confirm the self-enrolment a course offers ("Enrol me")."""
    from .. import access, lookup
    from ..enrolments import parse_settings

    data = parse_settings(pairs)
    for key, value in data.items():
        if value != "-":
            continue
        if sys.stdin.isatty():  # a person at a terminal: ask without echo
            data[key] = click.prompt(key, hide_input=True, err=True)
        else:
            data[key] = sys.stdin.readline().rstrip("\r\n")
    with open_site() as site:
        decision = access.enrol_me(
            site,
            lookup.user(site.session, username),
            lookup.course(site.session, shortname),
            data,
            instance_id=instance_id,
        )
    click.echo(f"{decision.decision}: {decision.reason}".rstrip(": "))


@course.command("complete")
@click.argument("username")
@click.argument("shortname", metavar="COURSE")
@click.option("--time", "when", help="When (Unix seconds or ISO 8601); default now.")
def course_complete(username, shortname, when):
    """Record a course completion (fires on_completion)."""
    from .. import access, lookup

    with open_site() as site:
        timecompleted = _time(when, "--time") or clock.now()
        new = access.complete_course(
            site,
            lookup.user(site.session, username),
            lookup.course(site.session, shortname),
            timecompleted,
        )
    click.echo(
        f"{username} completed {shortname}"
        if new
        else f"{username} had already completed {shortname}"
    )


@cli.group()
def completion():
    """Course completions."""


@completion.command("list")
@click.argument("shortname", metavar="COURSE")
@json_option
def completion_list(shortname, as_json):
    """Who completed a course, and when."""
    from .. import access, lookup

    with open_site() as site:
        rows = access.completions(site, lookup.course(site.session, shortname))
    emit(rows, as_json, times=("timecompleted",))


@cli.group()
def method():
    """Enrolment methods, site-wide."""


@method.command("list")
@json_option
def method_list(as_json):
    """Installed methods, whether enabled, and their site settings."""
    with open_site() as site:
        enabled = site.enabled_methods()
        rows = [
            {
                "name": name,
                "title": m.title,
                "enabled": name in enabled,
                "order": enabled.index(name) + 1 if name in enabled else None,
                "settings": site.method_settings(name),
            }
            for name, m in sorted(site.plugins.methods.items())
        ]
    emit(rows, as_json, ["name", "title", "enabled", "order", "settings"] if not as_json else None)


@method.command("enable")
@click.argument("name")
def method_enable(name):
    """Enable a method on the site."""
    with open_site() as site, site.atomic():
        site.set_method_enabled(name, True)
    click.echo(f"{name} enabled")


@method.command("disable")
@click.argument("name")
def method_disable(name):
    """Disable a method: its enrolments stop giving access; nothing is deleted."""
    with open_site() as site, site.atomic():
        site.set_method_enabled(name, False)
    click.echo(f"{name} disabled")


@method.command("set")
@click.argument("name")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
def method_set(name, assignments):
    """Change a method's site settings (validated by its schema)."""
    from ..enrolments import parse_settings
    from ..fields import shown

    with open_site() as site, site.atomic():
        settings = site.set_method_settings(name, parse_settings(assignments))
        settings = shown(site.plugins.method(name).site_schema, settings)
    click.echo(json.dumps(settings, default=str))


@cli.group()
def instance():
    """Enrolment methods attached to courses."""


@instance.command("add")
@click.argument("shortname", metavar="COURSE")
@click.argument("method_name", metavar="METHOD")
@click.argument("assignments", nargs=-1, metavar="[KEY=VALUE...]")
@click.option("--dry-run", is_flag=True, help="Show what the first sync would do; change nothing.")
@click.option(
    "--backfill",
    is_flag=True,
    help="Also enrol who the method would have enrolled before (e.g. past completers).",
)
def instance_add(shortname, method_name, assignments, dry_run, backfill):
    """Add a method to a course; prints the new instance id (then the first sync's changes on
    stderr). With --dry-run: the changes, then one line per user (who would be enrolled)."""
    from .. import lookup
    from ..enrolments import add_instance, parse_settings

    with open_site() as site:
        result = add_instance(
            site,
            lookup.course(site.session, shortname),
            method_name,
            parse_settings(assignments),
            dry_run=dry_run,
            backfill=backfill,
        )
        if dry_run:
            click.echo(_outcome_line(result.outcome))
            for line in _who(site, result):
                click.echo(line)
            return
    click.echo(result.instance.id)
    click.echo(_outcome_line(result.outcome), err=True)
    if result.scheduled:
        click.echo(f"{len(result.scheduled)} enrolment change(s) scheduled for later", err=True)


_VERBS = {"enrolled": "enrol", "updated": "update", "suspended": "suspend", "unenrolled": "unenrol"}


def _who(site, result) -> list[str]:
    """``enrol alice`` per changed user, then ``enrol carol at <time>`` per scheduled action."""
    from sqlalchemy import select

    from ..models import User

    outcome = result.outcome
    changed = [
        (verb, user_id)
        for kind, verb in _VERBS.items()
        for user_id in (getattr(outcome, kind) if outcome else ())
    ]
    ids = sorted({user_id for _verb, user_id in changed} | {s[0] for s in result.scheduled})
    names: dict[int, str] = {}
    for start in range(0, len(ids), 10_000):
        chunk = ids[start : start + 10_000]
        names.update(
            site.session.execute(select(User.id, User.username).where(User.id.in_(chunk))).all()
        )
    lines = [f"{verb} {names.get(user_id, user_id)}" for verb, user_id in changed]
    lines += [
        f"{action} {names.get(user_id, user_id)} at {clock.iso(due)}"
        for user_id, action, due in result.scheduled
    ]
    return lines


def _instance_row(site, inst) -> dict:
    from ..fields import shown
    from ..models import Course, Role

    role = site.session.get(Role, inst.role_id) if inst.role_id else None
    method = site.plugins.methods.get(inst.method)
    return {
        "id": inst.id,
        "course": site.session.get(Course, inst.course_id).shortname,
        "method": inst.method,
        "name": method.display_name(inst) if method else inst.name,
        "enabled": inst.enabled,
        "role": role.shortname if role else None,
        "settings": shown(method.instance_schema if method else None, inst.settings),
    }


@instance.command("list")
@click.argument("shortname", metavar="COURSE")
@json_option
def instance_list(shortname, as_json):
    """The course's instances in order."""
    from sqlalchemy import select

    from .. import lookup
    from ..models import EnrolInstance

    with open_site() as site:
        found = lookup.course(site.session, shortname)
        rows = [
            _instance_row(site, i)
            for i in site.session.scalars(
                select(EnrolInstance)
                .where(EnrolInstance.course_id == found.id)
                .order_by(EnrolInstance.sortorder)
            )
        ]
    emit(rows, as_json)


@instance.command("update")
@click.argument("instance_id", metavar="ID")
@click.argument("assignments", nargs=-1, required=True, metavar="KEY=VALUE...")
@click.option("--dry-run", is_flag=True)
def instance_update(instance_id, assignments, dry_run):
    """Change an instance's settings (then re-sync it)."""
    from .. import lookup
    from ..enrolments import parse_settings, update_instance

    with open_site() as site:
        result = update_instance(
            site,
            lookup.instance(site.session, instance_id),
            parse_settings(assignments),
            dry_run=dry_run,
        )
        click.echo(_outcome_line(result.outcome))


@instance.command("delete")
@click.argument("instance_id", metavar="ID")
def instance_delete(instance_id):
    """Delete an instance and unenrol its users."""
    from .. import lookup
    from ..enrolments import delete_instance

    with open_site() as site:
        outcome = delete_instance(site, lookup.instance(site.session, instance_id))
    click.echo(f"instance {instance_id} deleted; {len(outcome.unenrolled)} unenrolled")


@cli.group()
def enrolment():
    """Enrolments of a course; manual enrolment."""


@enrolment.command("list")
@click.argument("shortname", metavar="COURSE")
@json_option
def enrolment_list(shortname, as_json):
    """One row per user and instance (the instance by id and times in Unix seconds with --json,
    by name and as dates in the table)."""
    from .. import lookup
    from ..enrolments import list_enrolments

    with open_site() as site:
        rows = list_enrolments(site, lookup.course(site.session, shortname))
        if not as_json:
            names = instance_names(site, (row["instance"] for row in rows))
            for row in rows:
                row["instance"] = names[row["instance"]]
    emit(rows, as_json, times=("timestart", "timeend", "timecreated"))


@enrolment.command("add")
@click.argument("username")
@click.argument("shortname", metavar="COURSE")
@click.option("--role", "role_name", help="Role shortname (default: student).")
@click.option("--start", help="Unix seconds or ISO 8601.")
@click.option("--end", help="Unix seconds or ISO 8601.")
def enrolment_add(username, shortname, role_name, start, end):
    """Enrol a user by hand."""
    from .. import lookup
    from ..enrolments import enrol_manually

    with open_site() as site:
        found_role = lookup.role(site.session, role_name) if role_name else None
        outcome = enrol_manually(
            site,
            lookup.user(site.session, username),
            lookup.course(site.session, shortname),
            role=found_role,
            timestart=_time(start, "--start"),
            timeend=_time(end, "--end"),
        )
    click.echo(f"{username} in {shortname}: {_outcome_line(outcome)}")


@enrolment.command("remove")
@click.argument("username")
@click.argument("shortname", metavar="COURSE")
@click.option("--instance", "instance_id", type=int, help="Only this instance.")
def enrolment_remove(username, shortname, instance_id):
    """Unenrol a user by hand (refused where a method owns the enrolment)."""
    from .. import lookup
    from ..enrolments import unenrol_manually

    with open_site() as site:
        outcomes = unenrol_manually(
            site,
            lookup.user(site.session, username),
            lookup.course(site.session, shortname),
            instance_id,
        )
    click.echo(
        f"{username} unenrolled from {shortname} "
        f"({len(outcomes)} enrolment{'s' if len(outcomes) != 1 else ''})"
    )


def _edit_command(status: str | None, summary: str):
    """A command that edits a manual enrolment; ``status`` names the status it sets (``ACTIVE``
    or ``SUSPENDED`` of :mod:`enrolkit.models`, looked up when it runs so that defining the
    command does not load the models), None to keep it."""

    @click.argument("username")
    @click.argument("shortname", metavar="COURSE")
    @click.option("--start", help="New start: Unix seconds or ISO 8601.")
    @click.option("--end", help="New end: Unix seconds or ISO 8601 (0: none).")
    def command(username, shortname, start, end):
        from .. import lookup, models
        from ..manual_enrolments import edit_enrolment

        with open_site() as site:
            outcome = edit_enrolment(
                site,
                lookup.user(site.session, username),
                lookup.course(site.session, shortname),
                status=getattr(models, status) if status else None,
                timestart=_time(start, "--start"),
                timeend=clock.parse_time(end, field="--end") if end is not None else None,
            )
        click.echo(f"{username} in {shortname}: {_outcome_line(outcome)}")

    command.__doc__ = summary
    return command


enrolment.command("suspend")(
    _edit_command("SUSPENDED", "Suspend a manual enrolment (it stays, and grants nothing).")
)
enrolment.command("resume")(_edit_command("ACTIVE", "Resume a suspended manual enrolment."))
enrolment.command("edit")(_edit_command(None, "Change the dates of a manual enrolment."))


@enrolment.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@strict_option
def enrolment_import(file, strict):
    """Enrol users by hand from CSV: username,course[,role,start,end]."""
    from ..manual_enrolments import import_enrolments

    with open_site() as site:
        enrolled, updated, errors = import_enrolments(site, file, strict=strict)
    report_import("enrolments", enrolled, updated, errors)
