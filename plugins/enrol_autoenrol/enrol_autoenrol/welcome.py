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
from enrolkit.welcome import queue_welcomes
from sqlalchemy import select

from .matching import COMPONENT

CHUNK = 500


def key(instance_id: int, user_id: int, enrolment_id: int, timecreated: int) -> str:
    return f"welcome:{COMPONENT}:{instance_id}:{user_id}:{enrolment_id}:{timecreated}"


def send(site: Site, instance: EnrolInstance, user_ids: Sequence[int]) -> int:
    """Queue the welcome for the users the instance just enrolled; returns how many."""
    settings = instance.settings or {}
    if not settings.get("welcome"):
        return 0
    template = settings.get("welcome_template") or ""
    queued = 0
    for start in range(0, len(user_ids), CHUNK):
        rows = site.session.execute(
            select(
                User,
                UserEnrolment.id,
                UserEnrolment.timecreated,
                UserEnrolment.timestart,
                UserEnrolment.timeend,
            )
            .join(UserEnrolment, UserEnrolment.user_id == User.id)
            .where(
                UserEnrolment.instance_id == instance.id,
                User.id.in_(list(user_ids[start : start + CHUNK])),
                User.deleted.is_(False),
            )
        ).all()
        recipients = {
            key(instance.id, user.id, ue_id, created): (user, timestart, timeend)
            for user, ue_id, created, timestart, timeend in rows
        }
        queued += queue_welcomes(site, instance, recipients, template)
    return queued
