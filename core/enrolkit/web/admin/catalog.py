"""Categories and the roles people hold in them (which, e.g., category enrolment turns into
course enrolments)."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from ... import catalog, deletion, lookup, roles
from ...catalog import check_category_path, ensure_category, move_category
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
        parent=lookup.category_path(s.session, found.parent_id),
    )


def _category(category_id: int) -> Category:
    found = site().session.get(Category, category_id)
    if found is None:
        abort(404)
    return found


@bp.post("/categories/<int:category_id>/edit")
@admin_required
def edit_category(category_id: int):
    """Rename the category, and move it (with what it holds) under another one or to the top:
    the CLI's ``category move``."""
    s = site()
    found = _category(category_id)
    name = request.form.get("name", "").strip()
    parent_path = request.form.get("parent", "").strip()
    try:
        with s.atomic():
            if name and name != found.name:
                check_category_path(name, "name")
                if "/" in name:
                    raise EnrolkitError("name: a category name cannot contain '/'")
                found.name = name
            current = lookup.category_path(s.session, found.parent_id)
            if parent_path != current:
                parent = lookup.category(s.session, parent_path) if parent_path else None
                move_category(s, found, parent)
    except EnrolkitError as exc:
        s.session.rollback()
        flash(str(exc), "error")
    else:
        flash(_("Saved."), "success")
    return redirect(url_for("admin.category", category_id=found.id))


@bp.route("/categories/<int:category_id>/delete", methods=["GET", "POST"])
@admin_required
def delete_category(category_id: int):
    """Moodle's choice for a category that holds something: move its content to another
    category, or delete it all (``enrolkit category delete --move-to / --delete-content``)."""
    s = site()
    found = _category(category_id)
    path = lookup.category_path(s.session, found.id)
    if request.method == "POST":
        choice = request.form.get("content", "move")
        try:
            move_to = None
            if choice == "move" and request.form.get("move_to", "").strip():
                move_to = lookup.category(s.session, request.form["move_to"].strip())
            summary = deletion.delete_category(
                s, found, move_to=move_to, delete_content=choice == "delete"
            )
        except EnrolkitError as exc:
            s.session.rollback()
            flash(str(exc), "error")
            return redirect(url_for("admin.delete_category", category_id=category_id))
        del summary  # the CLI's English line; the page says it in the reader's words
        flash(_("Category %(path)s deleted.", path=path), "success")
        return redirect(url_for("admin.categories"))
    below = catalog.subtree_ids(s, found)
    counts = {
        "subcategories": len(below) - 1,
        "courses": s.session.scalar(
            select(func.count()).select_from(Course).where(Course.category_id.in_(below))
        ),
    }
    return render_template("admin/category_delete.html", category=found, path=path, counts=counts)
