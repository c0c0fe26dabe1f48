"""Courses for the site admin: list and search, create, edit (names, category, dates,
visibility), and delete with its enrolments. The same core functions as ``enrolkit course
import`` and ``enrolkit course delete``, so the checks and hooks are the CLI's."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from ... import catalog, deletion, lookup
from ...errors import EnrolkitError
from ...models import Course, EnrolInstance, UserEnrolment
from ..guards import admin_required, site
from ..i18n import read_time
from ..views import page_number, page_size
from . import bp

#: The course form's fields, in its order (shortname is fixed once the course exists).
COURSE_FIELDS = ("fullname", "idnumber", "category", "startdate", "enddate")


@bp.get("/courses")
@admin_required
def courses():
    s = site()
    query = request.args.get("q", "").strip()
    stmt = select(Course)
    if query:
        like = f"%{query}%"
        stmt = stmt.where(or_(Course.shortname.ilike(like), Course.fullname.ilike(like)))
    total = s.session.scalar(select(func.count()).select_from(stmt.subquery()))
    page, size = page_number(), page_size()
    rows = s.session.scalars(
        stmt.order_by(Course.shortname).limit(size).offset((page - 1) * size)
    ).all()
    found = lookup.category_paths(s.session, [c.category_id for c in rows])
    paths = {c.id: found.get(c.category_id, "") for c in rows}
    return render_template(
        "admin/courses.html", rows=rows, paths=paths, query=query, page=page, size=size,
        total=total,
    )  # fmt: skip


def _posted() -> dict[str, str | int]:
    row: dict[str, str | int] = {f: request.form.get(f, "").strip() for f in COURSE_FIELDS}
    row["visible"] = "1" if request.form.get("visible") else "0"
    for field in ("startdate", "enddate"):
        try:  # the day typed, in the reader's time zone; a bad value goes on to be refused
            row[field] = read_time(str(row[field]), field)
        except EnrolkitError:
            pass
    return row


def _row(values: dict[str, str | int], shortname: str) -> dict[str, str]:
    """The posted values as a CSV row of ``course import`` (a cleared date is "0": none)."""
    return {**{key: str(value) for key, value in values.items()}, "shortname": shortname}


@bp.route("/courses/new", methods=["GET", "POST"])
@admin_required
def new_course():
    values = _posted() if request.method == "POST" else {"visible": "1"}
    shortname = request.form.get("shortname", "").strip()
    if request.method == "POST":
        s = site()
        if s.session.scalar(select(Course.id).where(Course.shortname == shortname)):
            flash(_("A course with short name %(name)s exists already.", name=shortname), "error")
        else:
            try:
                course, _created = catalog.save_course(s, _row(values, shortname))
            except EnrolkitError as exc:
                s.session.rollback()
                flash(str(exc), "error")
            else:
                flash(_("Course %(name)s created.", name=course.shortname), "success")
                return redirect(url_for("course.methods", course_id=course.id))
    return render_template(
        "admin/course_form.html", course=None, values=values, shortname=shortname
    ), (400 if request.method == "POST" else 200)


def _course(course_id: int) -> Course:
    found = site().session.get(Course, course_id)
    if found is None:
        abort(404)
    return found


@bp.route("/courses/<int:course_id>/edit", methods=["GET", "POST"])
@admin_required
def edit_course(course_id: int):
    s = site()
    course = _course(course_id)
    if request.method == "POST":
        values = _posted()
        try:
            catalog.save_course(s, _row(values, course.shortname))
        except EnrolkitError as exc:
            s.session.rollback()
            flash(str(exc), "error")
            return render_template(
                "admin/course_form.html", course=course, values=values, shortname=course.shortname
            ), 400
        flash(_("Saved."), "success")
        return redirect(url_for("admin.courses"))
    values = {
        "fullname": course.fullname,
        "idnumber": course.idnumber,
        "category": lookup.category_path(s.session, course.category_id),
        "startdate": course.startdate,
        "enddate": course.enddate,
        "visible": "1" if course.visible else "0",
    }
    return render_template(
        "admin/course_form.html", course=course, values=values, shortname=course.shortname
    )


@bp.route("/courses/<int:course_id>/delete", methods=["GET", "POST"])
@admin_required
def delete_course(course_id: int):
    s = site()
    course = _course(course_id)
    if request.method == "POST":
        try:
            deletion.delete_course(s, course)
        except EnrolkitError as exc:
            s.session.rollback()
            flash(str(exc), "error")
            return redirect(url_for("admin.delete_course", course_id=course_id))
        flash(_("Course %(name)s deleted.", name=course.shortname), "success")
        return redirect(url_for("admin.courses"))
    enrolments = s.session.scalar(
        select(func.count())
        .select_from(UserEnrolment)
        .join(EnrolInstance, EnrolInstance.id == UserEnrolment.instance_id)
        .where(EnrolInstance.course_id == course.id)
    )
    return render_template("admin/course_delete.html", course=course, enrolments=enrolments)
