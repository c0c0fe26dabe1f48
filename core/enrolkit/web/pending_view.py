"""Pending (future-dated) enrolments as a table: who, which course, what happens and when. A
delayed completion enrolment, or a flat-file line starting next month, is seen here before it
is applied. Shown site-wide to admins and per course to its teachers."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select

from ..models import Course, EnrolInstance, PendingAction, Role, User
from ..pending import PENDING
from ..site import Site


def rows(site: Site, *, course_id: int | None = None, username: str = "") -> list[dict]:
    """Pending actions soonest first, each with its user, course, method and role names."""
    stmt = (
        select(PendingAction, User, EnrolInstance, Course, Role)
        .join(User, User.id == PendingAction.user_id)
        .join(EnrolInstance, EnrolInstance.id == PendingAction.instance_id)
        .join(Course, Course.id == EnrolInstance.course_id)
        .outerjoin(Role, Role.id == PendingAction.role_id)
        .where(PendingAction.status == PENDING)
        .order_by(PendingAction.due, PendingAction.id)
        .limit(500)
    )
    if course_id is not None:
        stmt = stmt.where(Course.id == course_id)
    if username:
        stmt = stmt.where(User.username == username)
    actions = {"enrol": _("enrol"), "unenrol": _("unenrol"), "suspend": _("suspend")}
    found = []
    for action, user, instance, course, role in site.session.execute(stmt).all():
        method = site.plugins.methods.get(instance.method)
        found.append(
            {
                "due": action.due,
                "action": actions.get(action.action, action.action),
                "user": user,
                "course": course,
                "method": method.display_name(instance) if method else instance.method,
                "role": role.name if role is not None else "",
                "timeend": action.timeend,
            }
        )
    return found
