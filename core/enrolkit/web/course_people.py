"""The people side of a course for its teachers: "Enrol users" (several at once, from names or
a cohort), editing one manual enrolment's dates and status, creating groups and adding members
by hand, and the enrolments scheduled for later. Views register on the course blueprint, so
the course in the URL is checked by :func:`course_manager` as everywhere else."""

from __future__ import annotations

import re

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import select

from .. import groups, lookup, manual_enrolments
from ..csvfile import RowError
from ..errors import EnrolkitError
from ..models import (
    ACTIVE,
    SUSPENDED,
    CohortMember,
    Course,
    EnrolInstance,
    Group,
    User,
    UserEnrolment,
)
from .course import _refused_role, bp
from .guards import course_manager, site
from .i18n import read_time
from .pending_view import rows as pending_rows

#: The most users one "Enrol users" post may name (a cohort counts its members).
MAX_AT_ONCE = 1000


@bp.get("/pending")
@course_manager
def pending_page(course: Course):
    return render_template(
        "course/pending.html", course=course, rows=pending_rows(site(), course_id=course.id)
    )


def _usernames(text: str) -> list[str]:
    return list(dict.fromkeys(name for name in re.split(r"[\s,;]+", text) if name))


@bp.post("/participants/enrol-users")
@course_manager
def enrol_users(course: Course):
    """Moodle's "Enrol users": the named users and the members of a cohort, in the manual
    instance, with one role and optional dates; the CSV import's core does the work, so a bad
    name is reported by line as the import reports it and the others are enrolled."""
    s = site()
    names = _usernames(request.form.get("usernames", "") + " " + request.form.get("username", ""))
    cohort_id = request.form.get("cohort", "").strip()
    role = request.form.get("role", "").strip()
    refused = _refused_role(course, role)
    if refused:
        flash(refused, "error")
        return redirect(url_for("course.participants_page"))
    try:
        if cohort_id:
            cohort = lookup.cohort(s.session, cohort_id)
            members = s.session.scalars(
                select(User.username)
                .join(CohortMember, CohortMember.user_id == User.id)
                .where(CohortMember.cohort_id == cohort.id, User.deleted.is_(False))
                .order_by(User.username)
            )
            names += [name for name in members if name not in names]
        start = read_time(request.form.get("timestart"), _("start"))
        end = read_time(request.form.get("timeend"), _("end"))
    except EnrolkitError as exc:
        flash(str(exc), "error")
        return redirect(url_for("course.participants_page"))
    if not names:
        flash(_("Name at least one user, or choose a cohort."), "error")
        return redirect(url_for("course.participants_page"))
    if len(names) > MAX_AT_ONCE:
        flash(_("At most %(num)d users at once.", num=MAX_AT_ONCE), "error")
        return redirect(url_for("course.participants_page"))
    rows = [
        (line, {"username": name, "course": course.shortname, "role": role,
                "start": str(start or ""), "end": str(end or "")})
        for line, name in enumerate(names, start=1)
    ]  # fmt: skip
    try:
        enrolled, updated, errors = manual_enrolments.enrol_rows(s, rows, "enrol-users")
    except EnrolkitError as exc:
        flash(str(exc), "error")
        return redirect(url_for("course.participants_page"))
    flash(
        ngettext("%(num)d user enrolled.", "%(num)d users enrolled.", enrolled)
        + (" " + _("%(num)d updated.", num=updated) if updated else ""),
        "success",
    )
    for error in errors[:20]:
        flash(f"{names[error.line - 1]}: {_rejection(error)}", "error")
    return redirect(url_for("course.participants_page"))


def _rejection(error: RowError) -> str:
    return error.message.removeprefix("column username: ")


def _manual_row(course: Course, enrolment_id: int) -> tuple[UserEnrolment, EnrolInstance, User]:
    found = (
        site()
        .session.execute(
            select(UserEnrolment, EnrolInstance, User)
            .join(EnrolInstance, EnrolInstance.id == UserEnrolment.instance_id)
            .join(User, User.id == UserEnrolment.user_id)
            .where(UserEnrolment.id == enrolment_id, EnrolInstance.course_id == course.id)
        )
        .first()
    )
    if found is None:
        abort(404)
    return found[0], found[1], found[2]


@bp.route("/enrolment/<int:enrolment_id>", methods=["GET", "POST"])
@course_manager
def edit_enrolment(course: Course, enrolment_id: int):
    """Moodle's "Edit enrolment": the status and dates of one manual enrolment. Enrolments a
    method keeps in sync (cohort, meta ...) are shown, not edited: the method would undo it."""
    enrolment, instance, user = _manual_row(course, enrolment_id)
    editable = instance.method == "manual"
    if request.method == "POST":
        if not editable:
            abort(403)
        try:
            status = SUSPENDED if request.form.get("status") == "suspended" else ACTIVE
            start = read_time(request.form.get("timestart"), _("start"))
            end = read_time(request.form.get("timeend"), _("end"))
            manual_enrolments.edit_enrolment(
                site(), user, course, status=status, timestart=start, timeend=end
            )
        except EnrolkitError as exc:
            site().session.rollback()
            flash(str(exc), "error")
        else:
            flash(_("The enrolment of %(user)s is saved.", user=user.fullname), "success")
            return redirect(url_for("course.participants_page"))
    method = site().plugins.methods.get(instance.method)
    return render_template(
        "course/enrolment.html",
        course=course,
        enrolment=enrolment,
        user=user,
        editable=editable,
        method=method.display_name(instance) if method else instance.method,
        suspended=enrolment.status != ACTIVE,
    )


@bp.post("/groups/create")
@course_manager
def create_group(course: Course):
    try:
        group = groups.add_group(site(), course, request.form.get("name", ""))
    except EnrolkitError as exc:
        flash(str(exc), "error")
    else:
        flash(_("Group %(name)s created.", name=group.name), "success")
    return redirect(url_for("course.groups"))


@bp.post("/groups/add-member")
@course_manager
def add_group_member(course: Course):
    s = site()
    group = s.session.get(Group, request.form.get("group", type=int) or 0)
    if group is None or group.course_id != course.id:
        flash(_("Choose a group of this course."), "error")
        return redirect(url_for("course.groups"))
    try:
        user = lookup.user(s.session, request.form.get("username", "").strip())
        groups.add_members(s, group, [user])
    except EnrolkitError as exc:
        s.session.rollback()
        flash(str(exc), "error")
    else:
        flash(_("%(user)s is in %(group)s.", user=user.fullname, group=group.name), "success")
    return redirect(url_for("course.groups"))
