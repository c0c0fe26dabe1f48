"""``enrolkit template preview``: render a welcome message or a group-name template for one
user, with the checks a save runs, so a template can be tried before it goes into a method."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from .. import clock
from . import cli
from .output import open_site

source_options = [
    click.option(
        "--file",
        "file",
        type=click.File("r", encoding="utf-8"),
        metavar="PATH",
        help="Read the template from a file ('-' for stdin).",
    ),
    click.option("--text", help="The template itself."),
]


def _with_source(command):
    for option in reversed(source_options):
        command = option(command)
    return command


def _source(file, text) -> str | None:
    if file is not None and text is not None:
        raise click.UsageError("give --file or --text, not both")
    return file.read() if file is not None else text


@contextmanager
def _reported() -> Iterator[None]:
    """Template problems go to stderr as ``line N: message``, then exit status 1."""
    from ..templating import TemplateError

    try:
        yield
    except TemplateError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        sys.exit(1)


@cli.group()
def template():
    """User-written templates: welcome messages and group names."""


@template.group()
def preview():
    """Render a template for one user (errors: 'line N: ...', exit 1)."""


@preview.command("welcome")
@click.option("--course", "shortname", required=True, metavar="SHORTNAME", help="The course.")
@click.option("--user", "username", required=True, metavar="USERNAME", help="The recipient.")
@_with_source
@click.option("--role", metavar="ROLE", help="Role shortname of the enrolment (enrolment.role).")
@click.option("--start", metavar="TIME", help="Enrolment start (ISO 8601 or Unix seconds).")
@click.option("--end", metavar="TIME", help="Enrolment end (ISO 8601 or Unix seconds).")
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="NAME=VALUE",
    help="An extra variable a method would pass (e.g. completed=Intro). Repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print subject, text and html as JSON.")
def preview_welcome(shortname, username, file, text, role, start, end, variables, as_json):
    """A welcome message: subject, text part and HTML part. Without --file or --text, the
    default message."""
    from .. import lookup, templating
    from ..enrolments import parse_settings

    source = _source(file, text) or ""
    with open_site() as site, _reported():
        mail = templating.preview_welcome(
            site,
            source,
            user=lookup.user(site.session, username),
            course=lookup.course(site.session, shortname),
            role=lookup.role(site.session, role) if role else None,
            timestart=clock.parse_time(start, field="--start"),
            timeend=clock.parse_time(end, field="--end"),
            extra=parse_settings(variables),
        )
    if as_json:
        click.echo(json.dumps({"subject": mail.subject, "text": mail.text, "html": mail.html}))
        return
    click.echo(f"Subject: {mail.subject}\n\n---- text ----\n{mail.text.rstrip()}")
    click.echo(f"---- html ----\n{mail.html.rstrip()}")


@preview.command("group")
@click.option("--user", "username", required=True, metavar="USERNAME", help="The member.")
@_with_source
def preview_group(username, file, text):
    """The group a user would join, e.g. --text 'Groupe_{profile_field_department}'."""
    from .. import lookup, templating
    from ..templating import TemplateError

    source = _source(file, text)
    if source is None:
        raise click.UsageError("give the template with --text or --file")
    source = source.rstrip("\r\n")
    with open_site() as site, _reported():
        problems = templating.validate_group_template(source, templating.custom_field_names(site))
        if problems:
            raise TemplateError(problems)
        values = templating.group_values(site, lookup.user(site.session, username), source)
    name = templating.render_group_name(values, source)
    if name is not None:
        click.echo(name)
        return
    empty = [
        f"{{{name}}}" for name, value in values.items() if not value.strip(templating.WHITESPACE)
    ]
    reason = f"{', '.join(empty)} empty" if empty else "the name is empty"
    click.echo(f"(no group: {reason} for {username})")
