"""The category tree: move a category (its courses follow)."""

from __future__ import annotations

import click

from . import cli
from .output import open_site


@cli.group()
def category():
    """Course categories, named by path: 'Parent / Child'."""


@category.command("move")
@click.argument("path", metavar="CATEGORY")
@click.option("--to", "parent", help="New parent category path (default: the top level).")
def category_move(path, parent):
    """Move a category, with its subcategories and courses, under another one."""
    from .. import catalog, lookup

    with open_site() as site:
        found = lookup.category(site.session, path)
        target = lookup.category(site.session, parent) if parent else None
        catalog.move_category(site, found, target)
        click.echo(f"moved to {lookup.category_path(site.session, found.id)}")


@category.command("delete")
@click.argument("path", metavar="CATEGORY")
@click.option("--move-to", metavar="PATH", help="Move its subcategories, courses and cohorts here.")
@click.option("--delete-content", is_flag=True, help="Delete its subcategories, courses, cohorts.")
def category_delete(path, move_to, delete_content):
    """Delete a category (Moodle's choice for its content: move it, or delete it)."""
    from .. import lookup
    from ..deletion import delete_category

    with open_site() as site:
        found = lookup.category(site.session, path)
        target = lookup.category(site.session, move_to) if move_to else None
        click.echo(delete_category(site, found, move_to=target, delete_content=delete_content))
