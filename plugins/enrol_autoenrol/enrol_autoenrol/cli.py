"""``enrolkit rule test INSTANCE USERNAME``: test a rule on a real account before relying on it."""

from __future__ import annotations

import json

import click
from enrolkit.cli.output import json_option, open_site
from enrolkit.errors import EnrolkitError

from . import NAME


@click.group("rule")
def rule() -> None:
    """Auto-enrol rules."""


@rule.command("test")
@click.argument("instance_id", metavar="INSTANCE")
@click.argument("username")
@json_option
def rule_test(instance_id: str, username: str, as_json: bool) -> None:
    """Explain, condition by condition, why USERNAME matches the rule of auto-enrol INSTANCE or
    not, and what else would stop a new enrolment now. Changes nothing."""
    from enrolkit import lookup

    with open_site() as site:
        instance = lookup.instance(site.session, instance_id)
        if instance.method != NAME:
            raise EnrolkitError(
                f"instance {instance.id} is a {instance.method} instance; "
                f"rule test works on {NAME} instances"
            )
        user = lookup.user(site.session, username)
        verdict = site.plugins.method(NAME).explain(site, instance, user)
    if as_json:
        click.echo(json.dumps(verdict.to_json(), indent=2, ensure_ascii=False))
    else:
        click.echo(verdict.text())
