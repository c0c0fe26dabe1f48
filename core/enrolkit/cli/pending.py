"""Pending actions: the future-dated changes waiting in the core queue (a flat-file line starting
next month, an enrolment delayed after a completion)."""

from __future__ import annotations

import click

from . import cli
from .output import emit, json_option, open_site

COLUMNS = (
    "id", "due", "action", "user", "course", "method", "instance", "role", "start", "end", "reason",
)  # fmt: skip


@cli.group("pending")
def pending_group():
    """Future-dated enrolment changes waiting for their time."""


@pending_group.command("list")
@click.option("--course", "shortname", metavar="COURSE", help="Only this course.")
@click.option("--user", "username", metavar="USERNAME", help="Only this user.")
@json_option
def pending_list(shortname, username, as_json):
    """Pending actions, soonest first. Tables show dates; --json gives Unix seconds."""
    from .. import lookup
    from ..pending import pending

    with open_site() as site:
        course = lookup.course(site.session, shortname) if shortname else None
        user = lookup.user(site.session, username) if username else None
        actions = pending(
            site, course_id=course.id if course else None, user_id=user.id if user else None
        )
        names = _names(site, actions)
        rows = [_row(action, names) for action in actions]
    emit(rows, as_json, COLUMNS, times=("due", "start", "end"))


def _names(site, actions) -> dict[str, dict[int, str]]:
    """Usernames, course shortnames (per instance) and role shortnames the rows show."""
    from sqlalchemy import select

    from ..models import Course, EnrolInstance, Role, User

    users = {a.user_id for a in actions}
    instances = {a.instance_id for a in actions}
    roles = {a.role_id for a in actions if a.role_id}
    return {
        "user": dict(
            site.session.execute(select(User.id, User.username).where(User.id.in_(users))).all()
        ),
        "course": dict(
            site.session.execute(
                select(EnrolInstance.id, Course.shortname)
                .join(Course, Course.id == EnrolInstance.course_id)
                .where(EnrolInstance.id.in_(instances))
            ).all()
        ),
        "role": dict(
            site.session.execute(select(Role.id, Role.shortname).where(Role.id.in_(roles))).all()
        ),
    }


def _row(action, names) -> dict:
    return {
        "id": action.id,
        "due": action.due,
        "action": action.action,
        "user": names["user"].get(action.user_id, ""),
        "course": names["course"].get(action.instance_id, ""),
        "method": action.method,
        "instance": action.instance_id,
        "role": names["role"].get(action.role_id, "") if action.role_id else "",
        "start": action.timestart,
        "end": action.timeend,
        "reason": action.reason,
    }
