"""``enrolkit token create|revoke|list``: the bearer tokens of the REST API."""

from __future__ import annotations

import click

from ..api import READ, SCOPES
from . import cli
from .output import emit, json_option, open_site


@cli.group()
def token():
    """REST API tokens (shown once, stored hashed)."""


@token.command("create")
@click.argument("name")
@click.option(
    "--scope",
    type=click.Choice(SCOPES),
    default=READ,
    show_default=True,
    help="read: GET only; write: any change a site admin may make; scim: /scim/v2 only.",
)
def token_create(name, scope):
    """Make a token and print it. It is shown this once: only its digest is kept."""
    from ..api import tokens

    with open_site() as site:
        raw = tokens.create(site, name, scope)
    click.echo(raw)
    click.echo(
        f"token {name!r} ({scope}) created; send it as 'Authorization: Bearer <token>'. "
        "It cannot be shown again.",
        err=True,
    )


@token.command("revoke")
@click.argument("name")
def token_revoke(name):
    """Revoke a token: requests carrying it are refused from now on."""
    from ..api import tokens

    with open_site() as site:
        tokens.revoke(site, name)
    click.echo(f"token {name!r} revoked")


@token.command("list")
@json_option
def token_list(as_json):
    """Every token: name, scope, when it was made, whether it is revoked (never the token)."""
    from ..api import tokens

    with open_site() as site:
        rows = tokens.listing(site)
    emit(rows, as_json, times=("created",))
