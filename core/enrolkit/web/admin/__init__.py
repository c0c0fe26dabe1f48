"""The site admin pages, one module per area; every view is behind :func:`admin_required`."""

from __future__ import annotations

from flask import Blueprint, render_template
from sqlalchemy import func, select

from ...models import Cohort, Course, HeldPlan, MailMessage, User
from ...webhooks import disabled_after_failures
from ..guards import admin_required, site

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@admin_required
def index():
    session = site().session

    def count(stmt):
        return session.scalar(select(func.count()).select_from(stmt.subquery()))

    counts = {
        "users": count(select(User.id).where(User.deleted.is_(False))),
        "courses": count(select(Course.id)),
        "cohorts": count(select(Cohort.id)),
        "held": count(select(HeldPlan.id).where(HeldPlan.status == "held")),
        "queued": count(select(MailMessage.id).where(MailMessage.status == "queued")),
    }
    failing_webhooks = disabled_after_failures(site())
    return render_template("admin/index.html", counts=counts, failing_webhooks=failing_webhooks)


from . import catalog, flatfile, methods, people, system, webhooks  # noqa: E402, F401  (register views)
