"""Enrolling one user, for the paths that decide about one user at a time (login, course view,
"Enrol me"): one explicit change per instance through the engine, with the instance's duration
and the group the template names; a login's instances in one engine batch."""

from __future__ import annotations

from collections.abc import Sequence

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
    return enrol_all(site, [instance], user, reason)[0]


def enrol_all(
    site: Site, instances: Sequence[EnrolInstance], user: User, reason: str
) -> list[Outcome]:
    """Enrol ``user`` in each of ``instances`` (one per course) as :func:`enrol` does, in one
    engine batch: the groups of every instance read and created together, then one plan per
    instance. Outcomes in the order of ``instances``."""
    if not instances:
        return []
    now = site.now()
    names = groups.names_for(site, instances, user)
    ids = groups.ensure_all(site, {i: [names[i.id]] if names[i.id] else [] for i in instances})
    plans = [
        Plan(
            instance.id,
            reason=reason,
            changes=[
                Change(
                    user.id,
                    timestart=now,
                    timeend=timeend(instance, now),
                    group_id=ids[instance.id].get(names[instance.id] or ""),
                    reason=reason,
                )
            ],
        )
        for instance in instances
    ]
    return site.engine.apply_many(plans)
