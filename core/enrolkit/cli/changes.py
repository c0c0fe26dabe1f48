"""``enrolkit changes``: the change feed, for scripts that poll instead of taking webhooks."""

from __future__ import annotations

import json

import click

from .. import feed
from ..clock import iso
from . import cli
from .output import emit, json_option, open_site


@cli.command("changes")
@click.option("--after", metavar="CURSOR", help="The 'next' cursor of the previous call.")
@click.option(
    "--limit",
    type=click.IntRange(1, feed.MAX_LIMIT),
    default=feed.DEFAULT_LIMIT,
    show_default=True,
)
@json_option
def changes(after, limit, as_json):
    """Enrolment and role changes after CURSOR, in commit order.

    With --json: {"changes": [...], "next": CURSOR}. Without: a table, and the next cursor on
    stderr. Pass the next cursor back with --after to get only what follows."""
    with open_site() as site:
        page = feed.changes(site, after, limit)
    if as_json:
        click.echo(json.dumps({"changes": page.changes, "next": page.next}, indent=2))
        return
    rows = [{**change, "time": iso(change["time"])} for change in page.changes]
    emit(rows, False, columns=["time", "event", "username", "course", "component", "reason"])
    click.echo(f"next: {page.next}", err=True)
