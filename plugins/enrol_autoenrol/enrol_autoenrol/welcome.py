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

from enrolkit import mail, templating
from enrolkit.log import record
from enrolkit.models import Course, EnrolInstance, MailMessage, Role, User, UserEnrolment
from enrolkit.site import Site
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
    course = site.session.get(Course, instance.course_id)
    role = site.session.get(Role, instance.role_id) if instance.role_id else None
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
        keys = {
            key(instance.id, user.id, ue_id, created): (user, start, end)
            for user, ue_id, created, start, end in rows
        }
        done = set(
            site.session.scalars(
                select(MailMessage.dedupe_key).where(MailMessage.dedupe_key.in_(list(keys)))
            )
        )
        for mail_key, (user, timestart, timeend) in keys.items():
            if mail_key in done:
                continue
            try:
                message = templating.render_welcome(
                    site,
                    template,
                    user=user,
                    course=course,
                    role=role,
                    timestart=timestart,
                    timeend=timeend,
                )
                queued += mail.queue(
                    site,
                    to=user.email,
                    subject=message.subject,
                    body=message.text,
                    html=message.html,
                    key=mail_key,
                )
            except (templating.TemplateError, mail.MailError) as exc:
                record(
                    site,
                    "welcome_not_sent",
                    COMPONENT,
                    course_id=instance.course_id,
                    user_id=user.id,
                    instance_id=instance.id,
                    reason=str(exc),
                )
    return queued
