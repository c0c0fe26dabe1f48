"""Moodle's daily user administration beyond the profile form: add a user, delete one, upload
users from CSV (the core import and its rejected-line report), and the custom profile fields."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, select

from ... import people
from ... import profile_fields as custom
from ...errors import EnrolkitError
from ...models import ProfileData, ProfileField, User
from ..guards import admin_required, site
from ..i18n import message_of, say
from . import bp

#: What the "Add a user" form asks (the rest is on the user's page once created).
NEW_USER_FIELDS = ("firstname", "lastname", "email", "department", "lang")


@bp.route("/users/new", methods=["GET", "POST"])
@admin_required
def new_user():
    values = {field: request.form.get(field, "").strip() for field in NEW_USER_FIELDS}
    username = request.form.get("username", "").strip()
    if request.method == "POST":
        password = request.form.get("password", "")
        try:
            user = people.create_user(site(), username, values)
            if password:
                with site().atomic():
                    people.set_password(user, password)
        except EnrolkitError as exc:
            site().session.rollback()
            flash(str(exc), "error")
        else:
            flash(_("User %(user)s created.", user=user.username), "success")
            return redirect(url_for("admin.user", user_id=user.id))
    return render_template(
        "admin/user_new.html", values=values, username=username, fields=NEW_USER_FIELDS
    ), (400 if request.method == "POST" else 200)


@bp.route("/users/<int:user_id>/delete", methods=["GET", "POST"])
@admin_required
def delete_user(user_id: int):
    user = site().session.get(User, user_id)
    if user is None or user.deleted:
        abort(404)
    if user.id == g.user.id:
        flash(_("You cannot delete yourself."), "error")
        return redirect(url_for("admin.user", user_id=user.id))
    if request.method == "POST":
        people.delete_user(site(), user)
        flash(_("User %(user)s deleted.", user=user.username), "success")
        return redirect(url_for("admin.users"))
    from ...models import UserEnrolment

    enrolments = site().session.scalar(
        select(func.count()).select_from(UserEnrolment).where(UserEnrolment.user_id == user.id)
    )
    return render_template("admin/user_delete.html", user=user, enrolments=enrolments)


@bp.route("/users/upload", methods=["GET", "POST"])
@admin_required
def upload_users():
    report = None
    if request.method == "POST":
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            flash(_("Choose a CSV file to upload."), "error")
            return redirect(url_for("admin.upload_users"))
        fd, path = tempfile.mkstemp(suffix=".csv")
        try:
            with os.fdopen(fd, "wb") as out:
                upload.save(out)
            created, updated, errors = people.import_users(site(), Path(path))
        except EnrolkitError as exc:
            flash(str(exc).replace(Path(path).name, upload.filename), "error")
            return redirect(url_for("admin.upload_users"))
        finally:
            os.unlink(path)
        report = {
            "created": created,
            "updated": updated,
            "rejected": [{"line": error.line, "message": error.message} for error in errors],
            "file": upload.filename,
        }
    return render_template(
        "admin/users_upload.html",
        report=report,
        columns=people.USER_REQUIRED + people.USER_OPTIONAL,
    )


@bp.route("/profile-fields", methods=["GET", "POST"])
@admin_required
def profile_fields():
    s = site()
    if request.method == "POST":
        shortname = request.form.get("shortname", "").strip().lower()
        try:
            custom.create(
                s,
                shortname,
                request.form.get("name", "").strip(),
                request.form.get("description", "").strip(),
            )
        except EnrolkitError as exc:
            s.session.rollback()
            say(message_of(exc), "error")
        else:
            flash(_("Profile field %(name)s created.", name=shortname), "success")
        return redirect(url_for("admin.profile_fields"))
    used = dict(
        s.session.execute(
            select(ProfileData.field_id, func.count())
            .where(ProfileData.value != "")
            .group_by(ProfileData.field_id)
        ).all()
    )
    rows = s.session.scalars(select(ProfileField).order_by(ProfileField.shortname)).all()
    return render_template("admin/profile_fields.html", rows=rows, used=used)


def _field(field_id: int) -> ProfileField:
    field = site().session.get(ProfileField, field_id)
    if field is None:
        abort(404)
    return field


def _where(use: custom.Use) -> str:
    """The page where a use of a field is changed: the rule page for a rule, else the
    instance's settings."""
    values = {"course_id": use.course.id, "instance_id": use.instance.id}
    if use.setting == custom.RULE:
        return url_for("course.rule", **values)
    return url_for("course.edit_instance", **values)


def _uses(field: ProfileField) -> list[dict]:
    s = site()
    return [
        {
            "course": use.course,
            "instance": s.plugins.methods[use.instance.method].display_name(use.instance)
            if use.instance.method in s.plugins.methods
            else use.instance.method,
            "setting": custom.SETTING_LABELS[use.setting],
            "href": _where(use),
        }
        for use in custom.uses(s, field.shortname)
    ]


@bp.route("/profile-fields/<int:field_id>", methods=["GET", "POST"])
@admin_required
def profile_field(field_id: int):
    """Edit a field's name, description and shortname (refused while settings read it)."""
    s = site()
    field = _field(field_id)
    values = {
        "shortname": field.shortname,
        "name": field.name,
        "description": field.description,
    }
    status = 200
    if request.method == "POST":
        values = {key: request.form.get(key, "").strip() for key in values}
        values["shortname"] = values["shortname"].lower()
        try:
            changed = custom.update(s, field, **values)
        except EnrolkitError as exc:
            s.session.rollback()
            say(message_of(exc), "error")
            status = 409 if isinstance(exc, custom.FieldInUse) else 400
        else:
            if changed:
                flash(_("Profile field %(name)s saved.", name=field.shortname), "success")
            else:
                flash(_("Nothing changed."), "success")
            return redirect(url_for("admin.profile_fields"))
    return render_template(
        "admin/profile_field.html",
        field=field,
        values=values,
        uses=_uses(field),
        holders=custom.users_with_value(s, field),
    ), status


@bp.route("/profile-fields/<int:field_id>/delete", methods=["GET", "POST"])
@admin_required
def delete_profile_field(field_id: int):
    """Confirm, saying how many users hold a value; refused while settings read the field."""
    s = site()
    field = _field(field_id)
    status = 200
    if request.method == "POST":
        shortname = field.shortname
        try:
            count = custom.remove(s, field)
        except custom.FieldInUse as exc:
            s.session.rollback()
            say(message_of(exc), "error")
            status = 409
        else:
            flash(
                ngettext(
                    "Profile field %(name)s deleted, with the value of %(num)d user.",
                    "Profile field %(name)s deleted, with the values of %(num)d users.",
                    count,
                    name=shortname,
                ),
                "success",
            )
            return redirect(url_for("admin.profile_fields"))
    return render_template(
        "admin/profile_field_delete.html",
        field=field,
        uses=_uses(field),
        holders=custom.users_with_value(s, field),
    ), status
