"""Outgoing webhooks (`enrolkit webhook`): subscriptions, their deliveries, replays."""

from __future__ import annotations

from .. import lookup, webhooks
from . import schemas as s
from .common import ID, blueprint, site

webhook_bp = blueprint("webhooks", "Outgoing webhooks, signed to Standard Webhooks.")


def _row(subscription_id: int) -> dict:
    for row in webhooks.listing(site()):
        if row["id"] == subscription_id:
            return row
    webhooks.get(site(), subscription_id)  # raises NotFound
    raise AssertionError("unreachable")


@webhook_bp.get("/webhooks")
@webhook_bp.response(200, s.Webhook(many=True))
@webhook_bp.reads()
def list_webhooks():
    """Every subscription and its backlog; never the secret."""
    return webhooks.listing(site())


@webhook_bp.post("/webhooks")
@webhook_bp.arguments(s.WebhookIn)
@webhook_bp.response(201, s.WebhookCreated)
@webhook_bp.writes(404, 422)
def add_webhook(args):
    """Subscribe a URL; the answer carries the signing secret, shown this once."""
    course_id = lookup.course(site().session, args["course"]).id if args.get("course") else None
    subscription, secret = webhooks.add(
        site(), args["url"], args["events"], course_id=course_id, method=args["method"]
    )
    return _row(subscription.id) | {"secret": secret}


@webhook_bp.get(f"/webhooks/<{ID}:subscription_id>")
@webhook_bp.response(200, s.Webhook)
@webhook_bp.reads(404)
def get_webhook(subscription_id):
    return _row(subscription_id)


@webhook_bp.patch(f"/webhooks/<{ID}:subscription_id>")
@webhook_bp.arguments(s.WebhookChange)
@webhook_bp.response(200, s.Webhook)
@webhook_bp.writes(404, 422)
def change_webhook(args, subscription_id):
    """Disable a subscription, or enable it again where it stopped."""
    webhooks.set_enabled(site(), subscription_id, args["status"] == webhooks.ACTIVE)
    return _row(subscription_id)


@webhook_bp.delete(f"/webhooks/<{ID}:subscription_id>")
@webhook_bp.response(204)
@webhook_bp.writes(404)
def remove_webhook(subscription_id):
    """Delete a subscription with its waiting events and deliveries."""
    webhooks.remove(site(), subscription_id)


@webhook_bp.get(f"/webhooks/<{ID}:subscription_id>/deliveries")
@webhook_bp.arguments(s.DeliveryQuery, location="query")
@webhook_bp.response(200, s.Delivery(many=True))
@webhook_bp.reads(404)
def list_deliveries(args, subscription_id):
    """The subscription's last 100 deliveries, newest first."""
    webhooks.get(site(), subscription_id)
    return webhooks.deliveries(site(), subscription_id, failed=args["failed"])


@webhook_bp.post(f"/webhooks/deliveries/<{ID}:delivery_id>/replay")
@webhook_bp.response(202)
@webhook_bp.writes(404)
def replay_delivery(delivery_id):
    """Send a delivery again at the next run, same webhook-id and body."""
    webhooks.replay(site(), delivery_id)
