"""Queueing welcome messages for the users a method just enrolled, the one way every method does.

The method names each recipient's mail with a key that identifies the real change it announces
(an enrolment row, a completion): a key already in the outbox is skipped, so a retry or a no-op
never mails twice. A user who cannot be mailed (a template or address problem) is logged as
``welcome_not_sent``, never a reason to undo the enrolment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from . import mail, templating
from .log import record
from .models import Course, EnrolInstance, MailMessage, Role, User
from .site import Site


def queue_welcomes(
    site: Site,
    instance: EnrolInstance,
    recipients: Mapping[str, tuple[User, int, int]],
    template: str,
    *,
    extra: Mapping[str, Any] | None = None,
) -> int:
    """Render ``template`` and queue it for each ``key -> (user, timestart, timeend)`` not yet in
    the outbox. Returns how many messages were queued."""
    if not recipients:
        return 0
    course = site.session.get(Course, instance.course_id)
    role = site.session.get(Role, instance.role_id) if instance.role_id else None
    done = set(
        site.session.scalars(
            select(MailMessage.dedupe_key).where(MailMessage.dedupe_key.in_(list(recipients)))
        )
    )
    queued = 0
    for key, (user, timestart, timeend) in recipients.items():
        if key in done:
            continue
        try:
            message = templating.render_welcome(
                site, template, user=user, course=course, role=role, timestart=timestart,
                timeend=timeend, extra=dict(extra) if extra else None,
            )  # fmt: skip
            queued += mail.queue(
                site, to=user.email, subject=message.subject, body=message.text,
                html=message.html, key=key,
            )  # fmt: skip
        except (templating.TemplateError, mail.MailError) as exc:
            record(site, "welcome_not_sent", instance.component, course_id=instance.course_id,
                   user_id=user.id, instance_id=instance.id, reason=str(exc))  # fmt: skip
    return queued
