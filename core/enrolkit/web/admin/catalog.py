"""Categories and the roles people hold in them (which, e.g., category enrolment turns into
course enrolments)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from ... import lookup, roles
from ...catalog import ensure_category
from ...errors import EnrolkitError
from ...models import CATEGORY, Category, Course, Role, RoleAssignment, User
from ...texts import translate
from ..guards import admin_required, site
from ..i18n import message_of, say
from . import bp


@bp.route("/categories", methods=["GET", "POST"])
@admin_required
def categories():
    s = site()
    if request.method == "POST":
        path = request.form.get("path", "").strip()
        try:
            with s.atomic():
                ensure_category(s, path)
        except EnrolkitError as exc:
            say(message_of(exc), "error")
        else:
            flash(_("Category %(path)s is ready.", path=path), "success")
        return redirect(url_for("admin.categories"))
    course_counts = dict(
        s.session.execute(
            select(Course.category_id, func.count()).group_by(Course.category_id)
        ).all()
    )
    found = list(s.session.scalars(select(Category).order_by(Category.path)))
    names = {c.id: c.name for c in found}
    tree = [
        (c, " / ".join(names.get(int(i), "?") for i in c.path.strip("/").split("/") if i))
        for c in found
    ]
    tree.sort(key=lambda pair: pair[1].lower())
    return render_template("admin/categories.html", tree=tree, course_counts=course_counts)


@bp.route("/categories/<int:category_id>", methods=["GET", "POST"])
@admin_required
def category(category_id: int):
    s = site()
    found = s.session.get(Category, category_id)
    if found is None:
        abort(404)
    if request.method == "POST":
        assign = request.form.get("action", "assign") == "assign"
        try:
            role = lookup.role(s.session, request.form.get("role", ""))
            user = lookup.user(s.session, request.form.get("username", "").strip())
            with s.atomic():
                act = roles.assign if assign else roles.unassign
                done = act(s, role, user, CATEGORY, found.id)
        except EnrolkitError as exc:
            say(message_of(exc), "error")
        else:
            if not done:
                flash(_("Nothing changed."), "success")
            elif assign:
                flash(
                    _(
                        "%(role)s assigned to %(user)s.",
                        role=translate(role.label, _),
                        user=user.fullname,
                    ),
                    "success",
                )
            else:
                flash(
                    _(
                        "%(role)s removed from %(user)s.",
                        role=translate(role.label, _),
                        user=user.fullname,
                    ),
                    "success",
                )
        return redirect(url_for("admin.category", category_id=found.id))
    assignments = s.session.execute(
        select(RoleAssignment, Role, User)
        .join(Role, Role.id == RoleAssignment.role_id)
        .join(User, User.id == RoleAssignment.user_id)
        .where(RoleAssignment.contextlevel == CATEGORY, RoleAssignment.instanceid == found.id)
        .order_by(Role.sortorder, User.username)
    ).all()
    courses = s.session.scalars(
        select(Course).where(Course.category_id == found.id).order_by(Course.shortname)
    ).all()
    return render_template(
        "admin/category.html",
        category=found,
        path=lookup.category_path(s.session, found.id),
        assignments=assignments,
        courses=courses,
        roles=s.session.scalars(select(Role).order_by(Role.sortorder)).all(),
    )
