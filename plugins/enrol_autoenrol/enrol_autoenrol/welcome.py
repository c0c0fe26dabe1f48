"""The welcome message: one per real enrolment, queued when the engine reports it.

It is queued from ``enrolments_changed`` for the users an auto-enrol plan *enrolled* (not for a
reactivation or a date change), whichever path made the enrolment: login, course view, "Enrol
me" or the hourly task. The outbox key names the enrolment row and its creation time (SQLite
reuses the id of a deleted row), so a retry adds nothing while a user unenrolled and enrolled
again is welcomed again. The template was validated when the
instance was saved; a user who cannot be mailed is logged, never a reason to undo the enrolment.
"""

from __future__ import annotations

from collections.abc import Sequence

from enrolkit.models import EnrolInstance, User, UserEnrolment
from enrolkit.site import Site
from enrolkit.welcome import Welcomes, queue_welcomes_many
from sqlalchemy import select

from .matching import COMPONENT

CHUNK = 500


def key(instance_id: int, user_id: int, enrolment_id: int, timecreated: int) -> str:
    return f"welcome:{COMPONENT}:{instance_id}:{user_id}:{enrolment_id}:{timecreated}"


def send(site: Site, enrolled: Sequence[tuple[EnrolInstance, Sequence[int]]]) -> int:
    """Queue the welcome for the users each instance just enrolled, for all the instances at
    once (one read and one insert per ``CHUNK`` enrolments); returns how many."""
    pairs = [
        (instance, user_id)
        for instance, user_ids in enrolled
        if (instance.settings or {}).get("welcome")
        for user_id in user_ids
    ]
    queued = 0
    for start in range(0, len(pairs), CHUNK):
        chunk = pairs[start : start + CHUNK]
        instances = {instance.id: instance for instance, _ in chunk}
        wanted = {(instance.id, user_id) for instance, user_id in chunk}
        rows = site.session.execute(
            select(
                User,
                UserEnrolment.instance_id,
                UserEnrolment.id,
                UserEnrolment.timecreated,
                UserEnrolment.timestart,
                UserEnrolment.timeend,
            )
            .join(UserEnrolment, UserEnrolment.user_id == User.id)
            .where(
                UserEnrolment.instance_id.in_(list(instances)),
                User.id.in_({user_id for _, user_id in chunk}),
                User.deleted.is_(False),
            )
        ).all()
        recipients: dict[int, dict] = {instance_id: {} for instance_id in instances}
        for user, instance_id, ue_id, created, timestart, timeend in rows:
            if (instance_id, user.id) in wanted:
                recipients[instance_id][key(instance_id, user.id, ue_id, created)] = (
                    user,
                    timestart,
                    timeend,
                )
        queued += queue_welcomes_many(
            site,
            [
                Welcomes(
                    instance,
                    recipients[instance.id],
                    (instance.settings or {}).get("welcome_template") or "",
                )
                for instance in instances.values()
            ],
        )
    return queued
