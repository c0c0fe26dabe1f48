"""Who may open what: the per-request site, the logged-in user, and one decorator per audience.

Every view carries exactly one of :func:`public`, :func:`login_required`, :func:`staff_required`,
:func:`course_manager` or :func:`admin_required`; each records its audience on the view as
``view.permission``, which the route walk test reads to check every route refuses the right
people. Anonymous visitors are sent to the login page; logged-in people without the right get 403.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from functools import wraps

from flask import abort, current_app, g, redirect, request, url_for
from sqlalchemy import select

from ..models import COURSE, Course, Role, RoleAssignment, User
from ..site import Site

PUBLIC, USER, TEACHER, ADMIN = "public", "user", "teacher", "admin"
#: Anyone who manages enrolments somewhere: a site admin or a teacher of at least one course.
STAFF = "staff"
#: Roles whose holders in a course manage its enrolment methods.
MANAGING_ROLES = ("editingteacher", "teacher")


def site() -> Site:
    """The site of this request, opened on first use and closed when the request ends."""
    if "site" not in g:
        stack = ExitStack()
        user = getattr(g, "user", None)
        g.site_stack = stack
        g.site = stack.enter_context(
            current_app.extensions["enrolkit"].site(
                origin="web", actor=user.username if user is not None else ""
            )
        )
        g.site.serving_url = request.url_root.rstrip("/")
    return g.site


def close_site(_exc: BaseException | None = None) -> None:
    stack = g.pop("site_stack", None)
    g.pop("site", None)
    if stack is not None:
        stack.close()


def is_course_manager(user: User, course_id: int) -> bool:
    """A site admin, or a teacher (editing or not) of the course."""
    if user.siteadmin:
        return True
    found = site().session.scalar(
        select(RoleAssignment.id)
        .join(Role, Role.id == RoleAssignment.role_id)
        .where(
            RoleAssignment.user_id == user.id,
            RoleAssignment.contextlevel == COURSE,
            RoleAssignment.instanceid == course_id,
            Role.shortname.in_(MANAGING_ROLES),
        )
        .limit(1)
    )
    return found is not None


def _mark(view: Callable, audience: str) -> Callable:
    view.permission = audience
    return view


def _to_login():
    return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))


def public(view: Callable) -> Callable:
    return _mark(view, PUBLIC)


def login_required(view: Callable) -> Callable:
    @wraps(view)
    def wrapped(**kwargs):
        if g.user is None:
            return _to_login()
        return view(**kwargs)

    return _mark(wrapped, USER)


def admin_required(view: Callable) -> Callable:
    @wraps(view)
    def wrapped(**kwargs):
        if g.user is None:
            return _to_login()
        if not g.user.siteadmin:
            abort(403)
        return view(**kwargs)

    return _mark(wrapped, ADMIN)


def is_staff(user: User) -> bool:
    """A site admin, or a teacher (editing or not) of some course."""
    if user.siteadmin:
        return True
    found = site().session.scalar(
        select(RoleAssignment.id)
        .join(Role, Role.id == RoleAssignment.role_id)
        .where(
            RoleAssignment.user_id == user.id,
            RoleAssignment.contextlevel == COURSE,
            Role.shortname.in_(MANAGING_ROLES),
        )
        .limit(1)
    )
    return found is not None


def staff_required(view: Callable) -> Callable:
    """For tools every course manager uses outside one course (the pickers' searches)."""

    @wraps(view)
    def wrapped(**kwargs):
        if g.user is None:
            return _to_login()
        if not is_staff(g.user):
            abort(403)
        return view(**kwargs)

    return _mark(wrapped, STAFF)


def course_manager(view: Callable) -> Callable:
    """The view takes ``course`` (loaded from the ``course_id`` of the URL) instead of the id."""

    @wraps(view)
    def wrapped(course_id: int, **kwargs):
        if g.user is None:
            return _to_login()
        course = site().session.get(Course, course_id)
        if course is None:
            abort(404)
        if not is_course_manager(g.user, course.id):
            abort(403)
        g.course = course
        return view(course=course, **kwargs)

    return _mark(wrapped, TEACHER)
