"""A tiny enrolkit plugin, installed by the core's tests as a real distribution.

It contributes the enrolment method ``ektest`` (its sync enrols every user of the site), the
command group of docs/hooks.md's ``register_commands`` example, as written there, and records
the hooks it receives, one line each, in the file named by ``EKTEST_LOG`` so that a test in
another process can see them fire.
"""

from __future__ import annotations

import os

import click
import enrolkit
from enrolkit.cli.output import open_site
from enrolkit.models import User
from sqlalchemy import select


def _record(line: str) -> None:
    path = os.environ.get("EKTEST_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(line + "\n")


class EktestMethod(enrolkit.EnrolMethod):
    name = "ektest"
    title = "Everyone (test plugin)"

    def sync(self, site, instance):
        users = site.session.scalars(select(User.id).order_by(User.id))
        changes = [enrolkit.Change(user_id) for user_id in users]
        return enrolkit.Plan(instance.id, "ektest: everyone", changes=changes)


@enrolkit.hookimpl
def register_methods(register):
    register(EktestMethod())
    _record("register_methods")


@enrolkit.hookimpl
def on_cron(now):
    _record(f"on_cron {now}")


@enrolkit.hookimpl
def enrolments_changed(changes):
    for change in changes:
        _record(f"enrolments_changed {change.method} enrolled={len(change.enrolled)}")


# docs/hooks.md, register_commands, the example as written:


@click.group("ektest")
def ektest():
    """The test plugin's commands."""


@ektest.command("users")
def users():
    """How many users the site has."""
    from enrolkit.models import User
    from sqlalchemy import func, select

    with open_site() as site:
        click.echo(site.session.scalar(select(func.count()).select_from(User)))


@enrolkit.hookimpl
def register_commands(cli):
    cli.add_command(ektest)
