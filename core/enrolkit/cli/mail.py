"""``enrolkit mail``: read the outbox and deliver it now."""

from __future__ import annotations

import click
from sqlalchemy import select

from .. import mail
from ..clock import iso
from ..models import MailMessage
from . import cli, fail
from .output import emit, json_option, open_site


@cli.group("mail")
def mail_group():
    """The mail outbox."""


@mail_group.command("list")
@json_option
@click.option("--status", type=click.Choice(mail.STATUSES), help="Only messages in this state.")
def mail_list(as_json, status):
    """Every message in the outbox, oldest first (times in Unix seconds with --json)."""
    query = select(MailMessage).order_by(MailMessage.id)
    if status:
        query = query.where(MailMessage.status == status)
    with open_site() as site:
        messages = site.session.scalars(query).all()
    if as_json:
        emit([_row(m) for m in messages], as_json=True)
        return
    rows = [
        {**_row(m), "created": iso(m.created), "next_attempt": iso(m.next_attempt)}
        for m in messages
    ]
    columns = ["id", "status", "to", "subject", "created", "attempts", "next_attempt", "last_error"]
    emit(rows, as_json=False, columns=columns)


def _row(message: MailMessage) -> dict:
    return {
        "id": message.id,
        "to": message.to,
        "subject": message.subject,
        "body": message.body,
        "html": message.html,
        "status": message.status,
        "created": message.created,
        "attempts": message.attempts,
        "next_attempt": message.next_attempt,
        "last_error": message.last_error,
        "sent": message.sent,
    }


@mail_group.command("send")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=mail.DEFAULT_LIMIT,
    show_default=True,
    help="Most messages to send in this run.",
)
def mail_send(limit):
    """Deliver due messages now over ENROLKIT_SMTP_URL (what the deliver_mail task does)."""
    with open_site() as site:
        result = mail.deliver(site, limit=limit)
    if not result.configured:
        fail(str(result))
    click.echo(str(result))
