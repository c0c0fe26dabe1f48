"""``enrolkit changes``: the change feed, for scripts that poll instead of taking webhooks."""

from __future__ import annotations

import json

import click

from .. import integrations
from . import cli
from .output import emit, json_option, open_site


@cli.command("changes")
@click.option("--after", metavar="CURSOR", help="The 'next' cursor of the previous call.")
@click.option(
    "--limit",
    type=click.IntRange(1, integrations.MAX_LIMIT),
    default=integrations.DEFAULT_LIMIT,
    show_default=True,
)
@json_option
def changes(after, limit, as_json):
    """Enrolment and role changes after CURSOR, in commit order.

    With --json: {"changes": [...], "next": CURSOR}. Without: a table, and the next cursor on
    stderr. Pass the next cursor back with --after to get only what follows."""
    from .. import feed

    with open_site() as site:
        page = feed.changes(site, after, limit)
    if as_json:
        click.echo(json.dumps({"changes": page.changes, "next": page.next}, indent=2))
        return
    columns = ["time", "event", "username", "course", "component", "reason"]
    emit(page.changes, False, columns=columns, times=("time",))
    click.echo(f"next: {page.next}", err=True)
