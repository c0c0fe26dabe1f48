"""``enrolkit plugin new NAME [--kind KIND] [--dir DIR]``: start a new enrolment method."""

from __future__ import annotations

from pathlib import Path

import click

from .. import scaffolding
from .system import plugin


class _NewCommand(click.Command):
    """``plugin new``, whose help lists the kinds the installed scaffold offers (read when the
    help is shown, so ``enrolkit --help`` reads no scaffold)."""

    def format_epilog(self, ctx, formatter) -> None:
        with formatter.section("Kinds"):
            formatter.write_dl(list(scaffolding.kinds().items()))
        super().format_epilog(ctx, formatter)


@plugin.command("new", cls=_NewCommand)
@click.argument("name")
@click.option(
    "--kind",
    default=scaffolding.DEFAULT_KIND,
    show_default=True,
    help="The shape of method to start from (listed below).",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Where to create the enrol_NAME folder.",
)
def plugin_new(name, kind, directory):
    """Scaffold a distribution for the method NAME: pyproject with the entry point, the method,
    its settings schemas, its hooks, a settings template, a welcome template and tests."""
    target = scaffolding.create(name, directory, kind)
    for path in sorted(p for p in target.rglob("*") if p.is_file()):
        click.echo(path)
    click.echo(
        f"\nnext: pip install -e {target}  (then `enrolkit plugin list` shows {name})\n"
        f"      pytest {target / 'tests'}\n"
        "see docs/writing-a-method.md",
        err=True,
    )
