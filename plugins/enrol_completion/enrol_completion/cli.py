"""``enrolkit completion path COURSE``: the learning path, added to the core's ``completion``
group (beside ``completion list``) through the ``register_commands`` hook."""

from __future__ import annotations

import click
from enrolkit.cli.output import emit, json_option, open_site


@click.command("path")
@click.argument("shortname", metavar="COURSE")
@json_option
def path(shortname, as_json):
    """The learning path through a course: the courses whose completion leads to it (position
    -n: n completions before) and those its completion leads to (+n), one row each."""
    from enrolkit import lookup

    from .path import learning_path

    with open_site() as site:
        emit(learning_path(site, lookup.course(site.session, shortname)), as_json)


def register(cli: click.Group) -> None:
    cli.commands["completion"].add_command(path)
