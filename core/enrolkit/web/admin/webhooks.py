"""Outgoing webhooks in the web admin: the subscriptions, a new one (its secret shown once),
disable/enable, removal after a confirmation, the deliveries and their replay. The same
operations as ``enrolkit webhook`` and ``/api/v1/webhooks``, through :mod:`enrolkit.webhooks`."""

from __future__ import annotations

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from ... import lookup, webhooks
from ...errors import EnrolkitError, NotFound
from ...models import Course, WebhookSubscription
from ..guards import admin_required, site
from . import bp

#: What each event means, as the form and the list show it (the name is the one receivers see).
EVENT_LABELS = {
    webhooks.ENROLLED: _l("A user is enrolled"),
    webhooks.UNENROLLED: _l("A user is unenrolled"),
    webhooks.UPDATED: _l("An enrolment is suspended, resumed or its dates change"),
    webhooks.ASSIGNED: _l("A role is assigned"),
    webhooks.UNASSIGNED: _l("A role is unassigned"),
}


def _courses(rows: list[dict]) -> dict[int, str]:
    ids = {r["course_id"] for r in rows if r["course_id"]}
    if not ids:
        return {}
    found = site().session.execute(select(Course.id, Course.shortname).where(Course.id.in_(ids)))
    return dict(found.all())


@bp.get("/webhooks")
@admin_required
def webhook_list():
    rows = webhooks.listing(site())
    return render_template(
        "admin/webhooks.html", rows=rows, courses=_courses(rows), labels=EVENT_LABELS
    )


def _form(values: dict, errors: dict, status: int = 200):
    return render_template(
        "admin/webhook_add.html",
        values=values,
        errors=errors,
        labels=EVENT_LABELS,
        methods=sorted(site().plugins.methods),
    ), status


@bp.route("/webhooks/add", methods=["GET", "POST"])
@admin_required
def webhook_add():
    if request.method == "GET":
        return _form({"url": "", "events": list(webhooks.EVENTS), "course": "", "method": ""}, {})
    s = site()
    values = {
        "url": request.form.get("url", "").strip(),
        "events": [e for e in request.form.getlist("events") if e in webhooks.EVENTS],
        "course": request.form.get("course", "").strip(),
        "method": request.form.get("method", "").strip(),
    }
    errors: dict[str, str] = {}
    if not values["url"]:
        errors["url"] = _("Give the receiver's URL (https://...).")
    if not values["events"]:
        errors["events"] = _("Choose at least one event.")
    course_id = None
    if values["course"]:
        try:
            course_id = lookup.course(s.session, values["course"]).id
        except NotFound:
            errors["course"] = _("No course has the short name %(name)s.", name=values["course"])
    if values["method"] and values["method"] not in s.plugins.methods:
        errors["method"] = _("Choose a method from the list.")
    if not errors:
        try:
            webhooks.check_url(values["url"])
        except webhooks.WebhookError as exc:
            errors["url"] = _("This URL is refused: %(detail)s", detail=str(exc))
    if errors:
        return _form(values, errors, 400)
    try:
        subscription, secret = webhooks.add(
            s, values["url"], values["events"], course_id=course_id, method=values["method"]
        )
    except EnrolkitError as exc:
        s.session.rollback()
        return _form(values, {"url": _("This URL is refused: %(detail)s", detail=str(exc))}, 400)
    # The secret is in this page only: not in a flash (the session cookie is signed, not
    # encrypted), not stored anywhere the browser keeps.
    page = render_template("admin/webhook_secret.html", subscription=subscription, secret=secret)
    return page, 201, {"Cache-Control": "no-store"}


@bp.post("/webhooks/<int:subscription_id>/<any(enable, disable):action>")
@admin_required
def webhook_state(subscription_id: int, action: str):
    s = site()
    try:
        webhooks.set_enabled(s, subscription_id, action == "enable")
    except NotFound:
        abort(404)
    if action == "enable":
        flash(
            _("Webhook %(id)d enabled; its waiting events go first.", id=subscription_id), "success"
        )
    else:
        flash(
            _("Webhook %(id)d disabled; no new event is queued for it.", id=subscription_id),
            "success",
        )
    return redirect(url_for("admin.webhook_list"))


@bp.route("/webhooks/<int:subscription_id>/remove", methods=["GET", "POST"])
@admin_required
def webhook_remove(subscription_id: int):
    s = site()
    try:
        subscription = webhooks.get(s, subscription_id)
    except NotFound:
        abort(404)
    if request.method == "POST":
        webhooks.remove(s, subscription_id)
        flash(_("Webhook %(id)d removed.", id=subscription_id), "success")
        return redirect(url_for("admin.webhook_list"))
    waiting = next(r["waiting"] for r in webhooks.listing(s) if r["id"] == subscription_id)
    return render_template("admin/webhook_remove.html", subscription=subscription, waiting=waiting)


def _filters(values) -> dict[str, str]:
    """The deliveries page's filters (one webhook, failed only) from a query or a form."""
    raw = values.get("webhook", "").strip()
    filters = {"webhook": raw} if raw.isdigit() else {}
    return filters | ({"failed": "1"} if values.get("failed") == "1" else {})


@bp.get("/webhooks/deliveries")
@admin_required
def webhook_deliveries():
    s = site()
    filters = _filters(request.args)
    subscription_id = int(filters["webhook"]) if "webhook" in filters else None
    if subscription_id is not None and s.session.get(WebhookSubscription, subscription_id) is None:
        abort(404)
    rows = webhooks.deliveries(s, subscription_id, failed="failed" in filters)
    return render_template(
        "admin/webhook_deliveries.html",
        rows=rows,
        filters=filters,
        subscriptions=webhooks.listing(s),
    )


@bp.post("/webhooks/deliveries/<int:delivery_id>/replay")
@admin_required
def webhook_replay(delivery_id: int):
    try:
        webhooks.replay(site(), delivery_id)
    except NotFound:
        abort(404)
    flash(
        _(
            "Delivery %(id)d will be sent again at the next run, with the same webhook-id.",
            id=delivery_id,
        ),
        "success",
    )
    return redirect(url_for("admin.webhook_deliveries", **_filters(request.form)))
