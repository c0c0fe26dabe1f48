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

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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
    return queue_welcomes_many(site, [Welcomes(instance, recipients, template, extra)])


@dataclass(frozen=True)
class Welcomes:
    """The welcomes of one instance: :func:`queue_welcomes`' arguments."""

    instance: EnrolInstance
    recipients: Mapping[str, tuple[User, int, int]]
    template: str
    extra: Mapping[str, Any] | None = None


#: Keys per ``IN (...)`` list when looking for messages already queued.
_KEYS_PER_QUERY = 500


def queue_welcomes_many(site: Site, welcomes: Sequence[Welcomes]) -> int:
    """:func:`queue_welcomes` for several instances at once (a login that enrols into ten
    courses, a batch of plans): courses, roles, the outbox keys and the recipients' profiles
    are read together and the messages queued in one insert, so the cost does not grow with the
    number of instances. Returns how many messages were queued."""
    welcomes = [w for w in welcomes if w.recipients]
    keys = [key for w in welcomes for key in w.recipients]
    if not keys:
        return 0
    done: set[str] = set()
    for start in range(0, len(keys), _KEYS_PER_QUERY):
        done.update(
            site.session.scalars(
                select(MailMessage.dedupe_key).where(
                    MailMessage.dedupe_key.in_(keys[start : start + _KEYS_PER_QUERY])
                )
            )
        )
    courses = _by_id(site, Course, {w.instance.course_id for w in welcomes})
    roles = _by_id(site, Role, {w.instance.role_id for w in welcomes if w.instance.role_id})
    users = templating.user_vars_many(
        site,
        {
            user.id: user
            for w in welcomes
            for key, (user, _, _) in w.recipients.items()
            if key not in done
        }.values(),
    )
    mails: list[mail.TemplateMail] = []
    senders: dict[str, tuple[EnrolInstance, User]] = {}
    for w in welcomes:
        course = courses[w.instance.course_id]
        role = roles.get(w.instance.role_id) if w.instance.role_id else None
        for key, (user, timestart, timeend) in w.recipients.items():
            if key in done:
                continue
            gettext = gettext_for(site, reader_language(site, user))  # the recipient's language
            variables = templating.context_for(
                site, user, course, role=role, timestart=timestart, timeend=timeend,
                extra=dict(w.extra) if w.extra else None, user_values=users[user.id],
            )  # fmt: skip
            message = mail.TemplateMail(
                to=user.email,
                subject=templating.welcome_subject(course.fullname, gettext),
                template=templating.welcome_source(w.template, gettext),
                variables=variables,
                key=key,
            )
            senders[key] = (w.instance, user)
            mails.append(message)

    def refused(message: mail.TemplateMail, error: mail.MailError) -> None:
        instance, user = senders[message.key]
        record(site, "welcome_not_sent", instance.component, course_id=instance.course_id,
               user_id=user.id, instance_id=instance.id, reason=str(error))  # fmt: skip

    return mail.queue_templates(site, mails, refused)


def _by_id(site: Site, model, ids: set[int]) -> dict:
    return {row.id: row for row in site.session.scalars(select(model).where(model.id.in_(ids)))}
