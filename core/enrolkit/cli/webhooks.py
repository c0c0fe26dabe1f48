"""``enrolkit webhook``: subscriptions of outgoing webhooks, their deliveries, replays."""

from __future__ import annotations

import click

from .. import integrations
from . import cli
from .output import emit, json_option, open_site


@cli.group("webhook")
def webhook():
    """Outgoing webhooks (Standard Webhooks): enrolment and role events sent to a URL."""


@webhook.command("add")
@click.argument("url")
@click.option(
    "--events",
    required=True,
    help=f"Comma-separated events: {','.join(integrations.EVENTS)}.",
)
@click.option("--course", "shortname", metavar="SHORTNAME", help="Only this course's events.")
@click.option("--method", default="", help="Only events of this enrolment method.")
def webhook_add(url, events, shortname, method):
    """Subscribe URL to events and print its signing secret (shown this once)."""
    from .. import lookup, webhooks

    with open_site() as site:
        course_id = lookup.course(site.session, shortname).id if shortname else None
        subscription, secret = webhooks.add(site, url, events, course_id=course_id, method=method)
        number = subscription.id
    click.echo(secret)
    click.echo(
        f"webhook {number} added; verify requests with the secret above (Standard Webhooks). "
        "It cannot be shown again.",
        err=True,
    )


@webhook.command("list")
@json_option
def webhook_list(as_json):
    """Every subscription: URL, events, filters, status, events waiting (never the secret)."""
    from .. import webhooks

    with open_site() as site:
        rows = webhooks.listing(site)
    if not as_json:
        columns = ["id", "status", "url", "events", "course_id", "method", "waiting"]
        emit(rows, as_json, columns=columns + ["disabled_reason"])
        return
    emit(rows, as_json)


@webhook.command("disable")
@click.argument("subscription_id", type=click.IntRange(min=1))
def webhook_disable(subscription_id):
    """Stop queueing and sending events to a subscription."""
    from .. import webhooks

    with open_site() as site:
        webhooks.set_enabled(site, subscription_id, False)
    click.echo(f"webhook {subscription_id} disabled")


@webhook.command("enable")
@click.argument("subscription_id", type=click.IntRange(min=1))
def webhook_enable(subscription_id):
    """Resume a disabled subscription where it stopped (its waiting batch goes first)."""
    from .. import webhooks

    with open_site() as site:
        webhooks.set_enabled(site, subscription_id, True)
    click.echo(f"webhook {subscription_id} enabled")


@webhook.command("remove")
@click.argument("subscription_id", type=click.IntRange(min=1))
def webhook_remove(subscription_id):
    """Delete a subscription, its waiting events and its deliveries."""
    from .. import webhooks

    with open_site() as site:
        webhooks.remove(site, subscription_id)
    click.echo(f"webhook {subscription_id} removed")


@webhook.command("deliveries")
@click.argument("subscription_id", type=click.IntRange(min=1), required=False)
@click.option("--failed", is_flag=True, help="Only batches not accepted yet whose last try failed.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@json_option
def webhook_deliveries(subscription_id, failed, limit, as_json):
    """Deliveries (batches), newest first, of one subscription or all."""
    from .. import webhooks

    with open_site() as site:
        rows = webhooks.deliveries(site, subscription_id, failed=failed, limit=limit)
    emit(rows, as_json, times=("created", "next_attempt", "delivered"))


@webhook.command("replay")
@click.argument("delivery_id", type=click.IntRange(min=1))
def webhook_replay(delivery_id):
    """Send a delivery again at the next run, with the same webhook-id and body."""
    from .. import webhooks

    with open_site() as site:
        webhooks.replay(site, delivery_id)
    click.echo(f"delivery {delivery_id} will be sent again at the next run")


@webhook.command("send")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 1000),
    default=integrations.BATCH_SIZE,
    show_default=True,
    help="Events per request for batches made now.",
)
def webhook_send(batch_size):
    """Deliver the due batches now (what the deliver_webhooks task does every minute)."""
    from .. import webhooks

    with open_site("cron") as site:
        click.echo(str(webhooks.deliver(site, batch_size=batch_size)))
