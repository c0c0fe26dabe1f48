"""The public pages. (The full admin comes with the web issue.)"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template
from sqlalchemy import func, select

from ..models import Course, EnrolInstance, User, UserEnrolment

bp = Blueprint("pages", __name__)


@bp.get("/")
def index():
    runtime = current_app.extensions["enrolkit"]
    with runtime.site(origin="web") as site:
        counts = {
            "users": site.session.scalar(select(func.count()).select_from(User)),
            "courses": site.session.scalar(select(func.count()).select_from(Course)),
            "instances": site.session.scalar(select(func.count()).select_from(EnrolInstance)),
            "enrolments": site.session.scalar(select(func.count()).select_from(UserEnrolment)),
        }
        methods = site.enabled_methods()
    return render_template("pages/index.html", counts=counts, methods=methods)
