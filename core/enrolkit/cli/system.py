"""Site-level commands: the database, the demo site, the server, plugins and the log."""

from __future__ import annotations

import click

from . import cli
from .output import emit, json_option, runtime


@cli.group()
def db():
    """The database schema."""


@db.command("upgrade")
def db_upgrade():
    """Create or upgrade the schema (Alembic), then the preset roles."""
    runtime().upgrade()
    click.echo(f"database ready: {runtime().db.url.render_as_string(hide_password=True)}")


@cli.group()
def plugin():
    """Installed plugins."""


@plugin.command("list")
@json_option
def plugin_list(as_json):
    """Every plugin: name, distribution, version and the hooks it implements."""
    rows = [
        {
            "name": p.name,
            "distribution": p.distribution,
            "version": p.version,
            "hooks": list(p.hooks),
        }
        for p in runtime().plugins.list()
    ]
    emit(rows, as_json)
