"""``enrolkit plugin new NAME [--dir DIR]``: start a new enrolment method."""

from __future__ import annotations

from pathlib import Path

import click

from .. import scaffolding
from .system import plugin


@plugin.command("new")
@click.argument("name")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to create the enrol_NAME folder.",
)
def plugin_new(name, directory):
    """Scaffold a distribution for the method NAME: pyproject with the entry point, the method,
    its settings schemas, a settings template, a welcome template, a task and tests."""
    target = scaffolding.create(name, directory)
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        click.echo(path)
    click.echo(
        f"\nnext: pip install -e {target}  (then `enrolkit plugin list` shows {name})\n"
        f"      pytest {target / 'tests'}\n"
        "see docs/writing-a-method.md",
        err=True,
    )
