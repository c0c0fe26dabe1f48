"""Users (list, search, profile edit that fires ``profile_changed``, password, admin flag) and
cohorts (create, upload a CSV, add and remove members, delete)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from ... import clock, cohorts, lengths, lookup, pending, people
from ...catalog import ensure_category
from ...errors import EnrolkitError
from ...log import record
from ...models import (
    Cohort,
    CohortMember,
    Course,
    EnrolInstance,
    ProfileField,
    User,
    UserEnrolment,
)
from ..guards import admin_required, site
from ..i18n import message_of, say, site_timezone, valid_timezone
from ..views import page_number, page_size
from . import bp

#: Standard fields on the profile form, in its order (username is fixed).
FIELDS = ("firstname", "lastname", "email", "idnumber", "auth", "lang", "department",
          "institution", "city", "country")  # fmt: skip


def _like(query: str):
    like = f"%{query}%"
    return or_(
        User.username.ilike(like),
        User.firstname.ilike(like),
        User.lastname.ilike(like),
        User.email.ilike(like),
        User.idnumber == query,
    )


@bp.get("/users")
@admin_required
def users():
    s = site()
    query = request.args.get("q", "").strip()
    stmt = select(User).where(User.deleted.is_(False))
    if query:
        stmt = stmt.where(_like(query))
    total = s.session.scalar(select(func.count()).select_from(stmt.subquery()))
    page, size = page_number(), page_size()
    found = s.session.scalars(
        stmt.order_by(User.username).limit(size).offset((page - 1) * size)
    ).all()
    return render_template(
        "admin/users.html", users=found, query=query, page=page, size=size, total=total
    )


def _user(user_id: int) -> User:
    user = site().session.get(User, user_id)
    if user is None or user.deleted:
        abort(404)
    return user


@bp.route("/users/<int:user_id>", methods=["GET", "POST"])
@admin_required
def user(user_id: int):
    s = site()
    found = _user(user_id)
    custom = list(s.session.scalars(select(ProfileField).order_by(ProfileField.shortname)))
    if request.method == "POST":
        action = request.form.get("action", "profile")
        if action == "password":
            _set_password(found)
        elif action == "admin":
            _set_admin(found)
        else:
            _set_profile(found, custom)
        return redirect(url_for("admin.user", user_id=found.id))
    return render_template(
        "admin/user.html",
        user=found,
        fields=FIELDS,
        custom=custom,
        values=people.profile_values(s, found.id),
        enrolments=_enrolments_of(found),
        member_of=s.session.scalars(
            select(Cohort)
            .join(CohortMember, CohortMember.cohort_id == Cohort.id)
            .where(CohortMember.user_id == found.id)
            .order_by(Cohort.name)
        ).all(),
        pending=len(pending.pending(s, user_id=found.id)),
        zones=clock.zones(),
        site_zone=site_timezone(),
    )


def _enrolments_of(user: User) -> list[dict]:
    """Every enrolment of ``user`` with its course, method name and status as people read it."""
    from ..participants import status_of

    s = site()
    rows = s.session.execute(
        select(UserEnrolment, EnrolInstance, Course)
        .join(EnrolInstance, EnrolInstance.id == UserEnrolment.instance_id)
        .join(Course, Course.id == EnrolInstance.course_id)
        .where(UserEnrolment.user_id == user.id)
        .order_by(Course.shortname)
    ).all()
    labels = {"active": _("active"), "suspended": _("suspended"), "future": _("not started"),
              "ended": _("ended")}  # fmt: skip
    found = []
    for enrolment, instance, course in rows:
        method = s.plugins.methods.get(instance.method)
        status = status_of(enrolment, instance, s.now())
        found.append(
            {
                "course": course,
                "method": method.display_name(instance) if method else instance.method,
                "status": status,
                "status_label": labels.get(status, status),
                "timestart": enrolment.timestart,
                "timeend": enrolment.timeend,
            }
        )
    return found


def _set_profile(user: User, custom: list[ProfileField]) -> None:
    assignments = {field: request.form.get(field, "").strip() for field in FIELDS}
    assignments["suspended"] = "1" if request.form.get("suspended") else "0"
    if "timezone" in request.form:
        assignments["timezone"] = request.form["timezone"].strip()
        if not valid_timezone(assignments["timezone"]):
            return
    for field in custom:
        key = f"profile_field_{field.shortname}"
        if key in request.form:
            assignments[key] = request.form[key].strip()
    if user.id == g.user.id and assignments["suspended"] == "1":
        flash(_("You cannot suspend yourself."), "error")
        return
    try:
        changed = people.set_fields(site(), user, assignments)
    except EnrolkitError as exc:
        site().session.rollback()
        say(message_of(exc), "error")
        return
    if changed:
        flash(_("Saved: %(fields)s.", fields=", ".join(changed)), "success")
    else:
        flash(_("Nothing changed."), "success")


def _set_password(user: User) -> None:
    s = site()
    password = request.form.get("password", "")
    if password != request.form.get("confirm", ""):
        flash(_("The two passwords differ."), "error")
        return
    try:
        with s.atomic():
            people.set_password(user, password)
            record(s, "password_changed", "core", user_id=user.id)
    except EnrolkitError as exc:
        say(message_of(exc), "error")
        return
    if user.id == g.user.id:  # keep this session, whose signature covered the old password
        from ..auth import remember

        remember(user)
    flash(_("Password set for %(user)s.", user=user.username), "success")


def _set_admin(user: User) -> None:
    s = site()
    make_admin = request.form.get("siteadmin") == "1"
    if user.id == g.user.id and not make_admin:
        flash(_("You cannot remove your own admin rights."), "error")
        return
    with s.atomic():
        user.siteadmin = make_admin
        record(
            s,
            "siteadmin_granted" if make_admin else "siteadmin_revoked",
            "core",
            user_id=user.id,
        )
    flash(_("Saved."), "success")


# --- cohorts ---------------------------------------------------------------------------------


@bp.route("/cohorts", methods=["GET", "POST"])
@admin_required
def cohort_list():
    s = site()
    if request.method == "POST":
        if "file" in request.files:
            _import_cohorts()
        else:
            _create_cohort()
        return redirect(url_for("admin.cohort_list"))
    members = (
        select(CohortMember.cohort_id, func.count().label("members"))
        .group_by(CohortMember.cohort_id)
        .subquery()
    )
    page, size = page_number(), page_size()
    total = s.session.scalar(select(func.count()).select_from(Cohort))
    rows = s.session.execute(
        select(Cohort, func.coalesce(members.c.members, 0))
        .outerjoin(members, members.c.cohort_id == Cohort.id)
        .order_by(Cohort.name)
        .limit(size)
        .offset((page - 1) * size)
    ).all()
    return render_template("admin/cohorts.html", rows=rows, page=page, size=size, total=total)


def _create_cohort() -> None:
    s = site()
    idnumber = request.form.get("idnumber", "").strip()
    name = request.form.get("name", "").strip()
    path = request.form.get("category", "").strip()
    if not idnumber or not name:
        flash(_("A cohort needs an id number and a name."), "error")
        return
    if s.session.scalar(select(Cohort.id).where(Cohort.idnumber == idnumber)):
        flash(_("A cohort with id number %(id)s exists already.", id=idnumber), "error")
        return
    try:
        with s.atomic():
            lengths.check_values(Cohort, {"idnumber": idnumber, "name": name}, prefix="")
            category = ensure_category(s, path) if path else None
            s.session.add(
                Cohort(
                    idnumber=idnumber,
                    name=name,
                    description=request.form.get("description", "").strip(),
                    category_id=category.id if category else None,
                    timecreated=clock.now(),
                )
            )
            record(s, "cohort_created", "core", reason=idnumber)
    except EnrolkitError as exc:
        say(message_of(exc), "error")
        return
    flash(_("Cohort %(id)s created.", id=idnumber), "success")


def _import_cohorts() -> None:
    upload = request.files["file"]
    if not upload.filename:
        flash(_("Choose a CSV file to upload."), "error")
        return
    fd, path = tempfile.mkstemp(suffix=".csv")
    try:
        with os.fdopen(fd, "wb") as out:
            upload.save(out)
        created, updated, errors = cohorts.import_cohorts(site(), Path(path))
    except EnrolkitError as exc:
        say(message_of(exc), "error")
        return
    finally:
        os.unlink(path)
    flash(
        _("%(created)d created, %(updated)d updated.", created=created, updated=updated), "success"
    )
    for error in errors[:20]:
        flash(str(error).replace(Path(path).name, upload.filename), "error")


def _cohort(cohort_id: int) -> Cohort:
    cohort = site().session.get(Cohort, cohort_id)
    if cohort is None:
        abort(404)
    return cohort


def _synced_enrolments(found: Cohort) -> dict[int, int]:
    """How many course enrolments cohort sync holds for each member: what removing the member
    (or deleting the cohort) touches, said before it is done."""
    s = site()
    instance_ids = [
        instance.id
        for instance in s.session.scalars(
            select(EnrolInstance).where(EnrolInstance.method == "cohort")
        )
        if (instance.settings or {}).get("cohort") == found.idnumber
    ]
    if not instance_ids:
        return {}
    return dict(
        s.session.execute(
            select(UserEnrolment.user_id, func.count())
            .where(UserEnrolment.instance_id.in_(instance_ids))
            .group_by(UserEnrolment.user_id)
        ).all()
    )


@bp.route("/cohorts/<int:cohort_id>", methods=["GET", "POST"])
@admin_required
def cohort(cohort_id: int):
    s = site()
    found = _cohort(cohort_id)
    if request.method == "POST":
        names = tuple(request.form.get("usernames", "").replace(",", " ").split())
        action = request.form.get("action", "add")
        try:
            users = lookup.users(s.session, names)
            if action == "remove":
                done = cohorts.remove_members(s, found, users)
                flash(_("%(count)d removed.", count=len(done)), "success")
            else:
                done = cohorts.add_members(s, found, users)
                flash(_("%(count)d added.", count=len(done)), "success")
        except EnrolkitError as exc:
            s.session.rollback()
            say(message_of(exc), "error")
        return redirect(url_for("admin.cohort", cohort_id=found.id))
    page, size = page_number(), page_size()
    total = s.session.scalar(select(func.count()).where(CohortMember.cohort_id == found.id))
    members = s.session.scalars(
        select(User)
        .join(CohortMember, CohortMember.user_id == User.id)
        .where(CohortMember.cohort_id == found.id)
        .order_by(User.username)
        .limit(size)
        .offset((page - 1) * size)
    ).all()
    return render_template(
        "admin/cohort.html",
        synced=_synced_enrolments(found),
        cohort=found,
        category=lookup.category_path(s.session, found.category_id),
        members=members,
        page=page,
        size=size,
        total=total,
    )


@bp.post("/cohorts/<int:cohort_id>/delete")
@admin_required
def delete_cohort(cohort_id: int):
    found = _cohort(cohort_id)
    try:
        cohorts.delete_cohort(site(), found)
    except EnrolkitError as exc:
        say(message_of(exc), "error")
        return redirect(url_for("admin.cohort", cohort_id=cohort_id))
    flash(_("Cohort %(id)s deleted.", id=found.idnumber), "success")
    return redirect(url_for("admin.cohort_list"))
