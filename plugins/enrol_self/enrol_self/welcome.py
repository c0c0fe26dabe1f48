"""The welcome message of a self enrolment, queued when the enrolment is made.

Its outbox key names the enrolment row by instance, user and creation time
(``welcome:enrol_self:<instance>:<user>:<timecreated>``), as ``mail.queue`` advises: a retry of
the same enrolment never mails twice, while a user who is unenrolled and enrols again (a new
row; SQLite may give it the old id) is welcomed again.
"""

from __future__ import annotations

from enrolkit.changes import EnrolmentChanges
from enrolkit.models import ACTIVE, EnrolInstance, User, UserEnrolment
from enrolkit.site import Site
from enrolkit.welcome import queue_welcomes
from sqlalchemy import select

from . import COMPONENT, NAME

DEFAULT_TEMPLATE = """\
Dear {{ user.fullname }},

welcome to "{{ course.fullname }}"{% if enrolment.end %}; your enrolment lasts until {{ enrolment.end }}{% endif %}.
Open it here: {{ course.url }}
"""


def send(site: Site, changes: EnrolmentChanges) -> int:
    if changes.method != NAME or not changes.enrolled:
        return 0
    instance = site.session.get(EnrolInstance, changes.instance_id)
    settings = instance.settings or {}
    if not settings.get("welcome", True):
        return 0
    rows = site.session.execute(
        select(User, UserEnrolment.timecreated, UserEnrolment.timestart, UserEnrolment.timeend)
        .join(UserEnrolment, UserEnrolment.user_id == User.id)
        .where(
            UserEnrolment.instance_id == instance.id,
            User.id.in_(list(changes.enrolled)),
            User.deleted.is_(False),
            UserEnrolment.status == ACTIVE,
        )
    )
    recipients = {
        f"welcome:{COMPONENT}:{instance.id}:{user.id}:{created}": (user, timestart, timeend)
        for user, created, timestart, timeend in rows
    }
    template = settings.get("welcome_template") or DEFAULT_TEMPLATE
    return queue_welcomes(site, instance, recipients, template)
