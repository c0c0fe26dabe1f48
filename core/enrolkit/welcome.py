"""Queueing welcome messages for the users a method just enrolled, the one way every method does.

The method names each recipient's mail with a key that identifies the real change it announces
(an enrolment row, a completion): a key already in the outbox is skipped, so a retry or a no-op
never mails twice. A user who cannot be mailed (an address problem) is logged as
``welcome_not_sent``, never a reason to undo the enrolment.

The template is not rendered here: this runs inside the enrolment's transaction (a login, a
sync), and a user-written template may take up to the site's render time limit. Each message is
queued with its variables as plain data, read now, and the delivery task renders it later; a
template that goes over a limit then marks its message failed, the enrolment stays.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import select

from . import mail, templating
from .catalogs import gettext_for, reader_language
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
    """Queue ``template`` with each ``key -> (user, timestart, timeend)``'s variables, for the
    keys not yet in the outbox. Returns how many messages were queued."""
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
        gettext = gettext_for(site, reader_language(site, user))  # the recipient's language
        source = templating.welcome_source(template, gettext)
        subject = templating.welcome_subject(course.fullname, gettext)
        variables = templating.context_for(
            site, user, course, role=role, timestart=timestart, timeend=timeend,
            extra=dict(extra) if extra else None,
        )  # fmt: skip
        try:
            queued += mail.queue_template(
                site, to=user.email, subject=subject, template=source, variables=variables,
                key=key,
            )  # fmt: skip
        except mail.MailError as exc:
            record(site, "welcome_not_sent", instance.component, course_id=instance.course_id,
                   user_id=user.id, instance_id=instance.id, reason=str(exc))  # fmt: skip
    return queued
