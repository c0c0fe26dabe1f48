"""The welcome message: one per completion, queued when the enrolment it announces is made.

It is queued from the ``enrolments_changed`` hook, for the users an applied plan of a completion
instance enrolled or updated, so it follows the enrolment whether that was made at once, by a
backfill or later by a pending action, and never when a plan changed nothing. The outbox key
names the instance, the user and the completion time: the same completion never mails twice,
whatever re-runs or repeats, while a later new completion would.
"""

from __future__ import annotations

from collections.abc import Sequence

from enrolkit import templating
from enrolkit.models import (
    ACTIVE,
    Course,
    CourseCompletion,
    EnrolInstance,
    User,
    UserEnrolment,
)
from enrolkit.names import format_string
from enrolkit.site import Site
from enrolkit.welcome import queue_welcomes
from sqlalchemy import select

from . import sources

COMPONENT = "enrol_completion"
CHUNK = 500
#: Variables a completion welcome has besides the core's.
EXTRA_VARIABLES = frozenset({"completed_course", "completed"})

DEFAULT_TEMPLATE = """\
Dear {{ user.fullname }},

you completed "{{ completed_course.fullname }}", so you are now enrolled in "{{ course.fullname }}"{% if enrolment.end %} until {{ enrolment.end }}{% endif %}.
Open it here: {{ course.url }}
"""


def key(instance_id: int, user_id: int, timecompleted: int) -> str:
    return f"welcome:{COMPONENT}:{instance_id}:{user_id}:{timecompleted}"


def send(site: Site, instance: EnrolInstance, user_ids: Sequence[int]) -> int:
    """Queue the welcome for each of ``user_ids`` (enrolled by ``instance``) not welcomed for
    their completion yet. Returns how many were queued."""
    settings = instance.settings or {}
    if not settings.get("welcome", True):
        return 0
    source = sources.source_of(site, instance.id)
    if source is None:
        return 0
    template = settings.get("welcome_template") or DEFAULT_TEMPLATE
    extra = {
        "completed_course": templating.course_vars(site, source),
        "completed": format_string(source.fullname or source.shortname),
    }
    queued = 0
    for start in range(0, len(user_ids), CHUNK):
        recipients = _recipients(site, instance, source, user_ids[start : start + CHUNK])
        queued += queue_welcomes(site, instance, recipients, template, extra=extra)
    return queued


def _recipients(
    site: Site, instance: EnrolInstance, source: Course, user_ids: Sequence[int]
) -> dict[str, tuple[User, int, int]]:
    """Mail key -> (user, enrolment start, end) for the users of ``user_ids`` who completed the
    source and hold an active enrolment in the instance; deleted and suspended users get none."""
    rows = site.session.execute(
        select(User, CourseCompletion.timecompleted, UserEnrolment.timestart, UserEnrolment.timeend)
        .join(
            CourseCompletion,
            (CourseCompletion.user_id == User.id) & (CourseCompletion.course_id == source.id),
        )
        .join(
            UserEnrolment,
            (UserEnrolment.user_id == User.id) & (UserEnrolment.instance_id == instance.id),
        )
        .where(
            User.id.in_(list(user_ids)),
            User.deleted.is_(False),
            User.suspended.is_(False),
            UserEnrolment.status == ACTIVE,
        )
    )
    return {
        key(instance.id, user.id, timecompleted): (user, timestart, timeend)
        for user, timecompleted, timestart, timeend in rows
    }
