"""Pages for everyone logged in: the dashboard, the course catalogue, opening a course (which
fires ``on_course_view``), the "Enrol me" confirmation and one's own profile."""

from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from sqlalchemy import case, func, or_, select

from .. import access, clock, confirmation, people
from ..changes import CourseAccess
from ..enrolments import active_clause
from ..errors import EnrolkitError, SettingsError
from ..models import (
    COURSE,
    Course,
    EnrolInstance,
    Role,
    RoleAssignment,
    User,
    UserEnrolment,
)
from . import LANGUAGES, forms
from .guards import MANAGING_ROLES, is_course_manager, login_required, site
from .i18n import message_of, say, site_timezone, valid_timezone
from .views import page_number, page_size

bp = Blueprint("people", __name__)


@bp.get("/")
@login_required
def dashboard():
    s = site()
    now = s.now()
    current = func.max(
        case((active_clause(now) & EnrolInstance.method.in_(s.enabled_methods()), 1), else_=0)
    ).label("current")
    mine = s.session.execute(
        select(Course, current)
        .join(EnrolInstance, EnrolInstance.course_id == Course.id)
        .join(UserEnrolment, UserEnrolment.instance_id == EnrolInstance.id)
        .where(UserEnrolment.user_id == g.user.id)
        .group_by(Course.id)
        .order_by(Course.fullname)
    ).all()
    teaching = set(
        s.session.scalars(
            select(RoleAssignment.instanceid)
            .join(Role, Role.id == RoleAssignment.role_id)
            .where(
                RoleAssignment.user_id == g.user.id,
                RoleAssignment.contextlevel == COURSE,
                Role.shortname.in_(MANAGING_ROLES),
            )
        )
    )
    return render_template(
        "people/dashboard.html",
        courses=[(course, bool(active)) for course, active in mine],
        teaching=teaching,
    )


@bp.get("/courses")
@login_required
def catalogue():
    s = site()
    query = request.args.get("q", "").strip()
    stmt = select(Course)
    if not g.user.siteadmin:
        stmt = stmt.where(Course.visible.is_(True))
    if query:
        like = f"%{query}%"
        stmt = stmt.where(or_(Course.shortname.ilike(like), Course.fullname.ilike(like)))
    total = s.session.scalar(select(func.count()).select_from(stmt.subquery()))
    page, size = page_number(), page_size()
    courses = s.session.scalars(
        stmt.order_by(Course.fullname).limit(size).offset((page - 1) * size)
    ).all()
    return render_template(
        "people/catalogue.html", courses=courses, query=query, page=page, total=total, size=size
    )


def _course(course_id: int) -> Course:
    course = site().session.get(Course, course_id)
    if course is None:
        abort(404)
    return course


@bp.get("/course/<int:course_id>")
@login_required
def course_view(course_id: int, errors: dict | None = None):
    """The course, or why not; with each "Enrol me" offer (its fields, and ``errors`` per
    offer after a submission that did not load)."""
    s = site()
    course = _course(course_id)
    if g.user.siteadmin:
        # Admins see every course without enrolling, as in Moodle: no hook fires, so a
        # view-mode method does not enrol the admin who looks.
        decision = CourseAccess("granted", "site admin")
    else:
        decision = access.view_course(s, g.user, course)
    if decision.decision == "denied" and decision.redirect:
        return redirect(decision.redirect)
    enrolments = []
    if decision.decision == "granted":
        enrolments = s.session.execute(
            select(EnrolInstance, UserEnrolment)
            .join(UserEnrolment, UserEnrolment.instance_id == EnrolInstance.id)
            .where(EnrolInstance.course_id == course.id, UserEnrolment.user_id == g.user.id)
            .order_by(EnrolInstance.sortorder)
        ).all()
    status = 403 if decision.decision == "denied" else 200
    return render_template(
        "people/course.html",
        course=course,
        decision=decision,
        offers=[
            (offer, confirmation.fields_of(s, offer.instance_id))
            for offer in decision.offers or (decision,)
            if decision.decision == "confirm"
        ],
        errors=errors or {},
        enrolments=[(s.plugins.methods.get(i.method), i, ue) for i, ue in enrolments],
        manager=is_course_manager(g.user, course.id),
    ), status


@bp.post("/course/<int:course_id>/enrol")
@login_required
def enrol_me(course_id: int):
    course = _course(course_id)
    instance_id = request.form.get("instance", type=int)
    s = site()
    data: dict[str, str] = {}
    instance = s.session.get(EnrolInstance, instance_id) if instance_id is not None else None
    method = s.plugins.methods.get(instance.method) if instance else None
    if method is not None:
        data = forms.posted(method.enrol_me_schema_for(s, instance))
    try:
        decision = access.enrol_me(s, g.user, course, data, instance_id=instance_id)
    except SettingsError as exc:
        s.session.rollback()
        flash(_("Check the fields of this enrolment."), "error")
        return course_view(course_id, errors={instance_id: exc.messages})
    except EnrolkitError as exc:
        say(message_of(exc), "error")
    else:
        if decision.decision == "granted":
            flash(_("You are enrolled in %(course)s.", course=course.fullname), "success")
    return redirect(url_for("people.course_view", course_id=course.id))


@bp.route("/user/<int:user_id>", methods=["GET", "POST"])
@login_required
def profile(user_id: int):
    """One's own profile (the ``profileurl`` of welcome messages); admins see anyone's."""
    if user_id != g.user.id and not g.user.siteadmin:
        abort(403)
    user = site().session.get(User, user_id)
    if user is None:
        abort(404)
    if request.method == "POST":
        if user_id != g.user.id:
            abort(403)
        chosen = {"lang": request.form.get("lang", "")}
        if "timezone" in request.form:
            chosen["timezone"] = request.form["timezone"].strip()
        if chosen["lang"] not in LANGUAGES:
            flash(_("Choose one of the offered languages."), "error")
        elif valid_timezone(chosen.get("timezone", "")):
            people.set_fields(site(), user, chosen)
            flash(_("Your preferences are saved."), "success")
        return redirect(url_for("people.profile", user_id=user_id))
    return render_template(
        "people/profile.html",
        user=user,
        fields=people.profile_values(site(), user.id),
        languages=LANGUAGES,
        zones=clock.zones(),
        site_zone=site_timezone(),
    )
