"""Enrolling one user, for the paths that decide about one user at a time (login, course view,
"Enrol me"): one explicit change through the engine, with the instance's duration and the group
the template names."""

from __future__ import annotations

from enrolkit import Change, Plan
from enrolkit.engine import Outcome
from enrolkit.models import EnrolInstance, User
from enrolkit.site import Site

from . import groups


def timeend(instance: EnrolInstance, timestart: int) -> int:
    duration = (instance.settings or {}).get("duration") or 0
    return timestart + duration if duration else 0


def enrol(site: Site, instance: EnrolInstance, user: User, reason: str) -> Outcome:
    """Enrol ``user`` now, for the instance's duration, in the group their values name."""
    now = site.now()
    name = groups.name_for(site, instance, user)
    group_id = groups.ensure(site, instance, [name])[name] if name else None
    change = Change(
        user.id, timestart=now, timeend=timeend(instance, now), group_id=group_id, reason=reason
    )
    return site.engine.apply(Plan(instance.id, reason=reason, changes=[change]))
