"""Moodle's ``mailstudents`` and ``mailteachers``: mail about each new flat-file enrolment,
through the outbox. The user gets the welcome message (the core's one way of queueing them); the
course's "enroller" gets a notice naming the user. As in Moodle, only a new enrolment is
announced, not a reactivated or re-dated one.

The enroller is the course's first editing teacher (by role order, then username); without one,
the first site admin, as Moodle falls back to its main admin.
"""

from __future__ import annotations

from collections.abc import Sequence

from enrolkit import mail, templating
from enrolkit.log import record
from enrolkit.models import COURSE, Course, EnrolInstance, Role, RoleAssignment, User
from enrolkit.site import Site
from enrolkit.welcome import queue_welcomes
from sqlalchemy import or_, select

from .method import COMPONENT, NAME

STUDENT_TEMPLATE = """Dear {{ user.fullname }},

you have been enrolled in the course "{{ course.fullname }}".
{% if enrolment.start %}It starts on {{ enrolment.start }}. {% endif %}\
{% if enrolment.end %}It ends on {{ enrolment.end }}.{% endif %}

{{ course.url }}
"""

TEACHER_TEMPLATE = """Dear {{ user.fullname }},

{{ enrolled_user }} has been enrolled in the course "{{ course.fullname }}" by a flat file.

{{ course.url }}
"""

EDITING = ("editingteacher",)


def new_enrolments(site: Site, instance_id: int, user_ids: Sequence[int]) -> None:
    settings = site.method_settings(NAME)
    if not (settings["mail_students"] or settings["mail_teachers"]):
        return
    instance = site.session.get(EnrolInstance, instance_id)
    users = list(site.session.scalars(select(User).where(User.id.in_(list(user_ids)))))
    if settings["mail_students"]:
        recipients = {
            f"flatfile:welcome:{instance.id}:{user.id}:{site.now()}": (user, 0, 0)
            for user in users
            if user.email
        }
        queue_welcomes(site, instance, recipients, STUDENT_TEMPLATE)
    if settings["mail_teachers"]:
        enroller = _enroller(site, instance.course_id)
        if enroller is not None:
            for user in users:
                _notify_enroller(site, instance, enroller, user)


def _enroller(site: Site, course_id: int) -> User | None:
    teacher = site.session.scalar(
        select(User)
        .join(RoleAssignment, RoleAssignment.user_id == User.id)
        .join(Role, Role.id == RoleAssignment.role_id)
        .where(
            RoleAssignment.contextlevel == COURSE,
            RoleAssignment.instanceid == course_id,
            or_(Role.shortname.in_(EDITING), Role.archetype.in_(EDITING)),
            User.deleted.is_(False),
            User.email != "",
        )
        .order_by(Role.sortorder, User.username)
        .limit(1)
    )
    if teacher is not None:
        return teacher
    return site.session.scalar(
        select(User)
        .where(User.siteadmin.is_(True), User.deleted.is_(False), User.email != "")
        .order_by(User.id)
        .limit(1)
    )


def _notify_enroller(site: Site, instance: EnrolInstance, enroller: User, user: User) -> None:
    course = site.session.get(Course, instance.course_id)
    try:
        variables = templating.context_for(
            site, enroller, course, extra={"enrolled_user": user.fullname or user.username}
        )
        message = templating.render_message(
            TEACHER_TEMPLATE,
            variables,
            subject=f"New enrolment in {templating.course_vars(site, course).shortname}",
        )
        mail.queue(
            site,
            to=enroller.email,
            subject=message.subject,
            body=message.text,
            html=message.html,
            key=f"flatfile:enroller:{instance.id}:{user.id}:{site.now()}",
        )
    except (templating.TemplateError, mail.MailError) as exc:
        record(site, "notice_not_sent", COMPONENT, course_id=course.id, user_id=enroller.id,
               instance_id=instance.id, reason=str(exc))  # fmt: skip
