"""Moodle's daily user administration beyond the profile form: add a user, delete one, upload
users from CSV (the core import and its rejected-line report), and the custom profile fields."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, select

from ... import lengths, people
from ...errors import EnrolkitError
from ...log import record
from ...models import ProfileData, ProfileField, User
from ..guards import admin_required, site
from . import bp
from .people import FIELDS

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


_SHORTNAME = re.compile(r"[a-z][a-z0-9_]*")


@bp.route("/profile-fields", methods=["GET", "POST"])
@admin_required
def profile_fields():
    s = site()
    if request.method == "POST":
        shortname = request.form.get("shortname", "").strip().lower()
        name = request.form.get("name", "").strip()
        if not _SHORTNAME.fullmatch(shortname) or shortname in FIELDS:
            flash(
                _(
                    "Short name: use lower-case letters, digits and _ (starting with a letter), "
                    "and not the name of a standard field."
                ),
                "error",
            )
        elif s.session.scalar(select(ProfileField.id).where(ProfileField.shortname == shortname)):
            flash(_("A profile field named %(name)s exists already.", name=shortname), "error")
        else:
            try:
                with s.atomic():
                    lengths.check_values(ProfileField, {"shortname": shortname, "name": name})
                    s.session.add(ProfileField(shortname=shortname, name=name or shortname))
                    record(s, "profile_field_created", "core", reason=shortname)
            except EnrolkitError as exc:
                flash(str(exc), "error")
            else:
                flash(_("Profile field %(name)s created.", name=shortname), "success")
        return redirect(url_for("admin.profile_fields"))
    used = dict(
        s.session.execute(
            select(ProfileData.field_id, func.count()).group_by(ProfileData.field_id)
        ).all()
    )
    rows = s.session.scalars(select(ProfileField).order_by(ProfileField.shortname)).all()
    return render_template("admin/profile_fields.html", rows=rows, used=used)
