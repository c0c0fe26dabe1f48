"""``enrolkit mail``: read the outbox and deliver it now."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from .. import outbox
from . import cli, fail
from .output import emit, json_option, open_site

if TYPE_CHECKING:
    from ..models import MailMessage


@cli.group("mail")
def mail_group():
    """The mail outbox."""


@mail_group.command("list")
@json_option
@click.option("--status", type=click.Choice(outbox.STATUSES), help="Only messages in this state.")
def mail_list(as_json, status):
    """Every message in the outbox, oldest first (times in Unix seconds with --json)."""
    from sqlalchemy import select

    from ..models import MailMessage

    query = select(MailMessage).order_by(MailMessage.id)
    if status:
        query = query.where(MailMessage.status == status)
    with open_site() as site:
        messages = site.session.scalars(query).all()
    if as_json:
        emit([_row(m) for m in messages], as_json=True)
        return
    columns = ["id", "status", "to", "subject", "created", "attempts", "next_attempt", "last_error"]
    emit(
        [_row(m) for m in messages],
        as_json=False,
        columns=columns,
        times=("created", "next_attempt"),
    )


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
    default=outbox.DEFAULT_LIMIT,
    show_default=True,
    help="Most messages to send in this run.",
)
def mail_send(limit):
    """Deliver due messages now over ENROLKIT_SMTP_URL (what the deliver_mail task does)."""
    from .. import mail

    with open_site() as site:
        result = mail.deliver(site, limit=limit)
    if not result.configured:
        fail(str(result))
    click.echo(str(result))
