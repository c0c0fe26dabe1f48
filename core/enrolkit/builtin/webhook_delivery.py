"""Outgoing webhooks as a core plugin: the change hooks queue events, a task delivers them.

The hooks import :mod:`enrolkit.webhooks` when they run, so loading the plugins (``enrolkit
--help``) does not load the database layer."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import hookimpl

if TYPE_CHECKING:
    from ..site import Site


@hookimpl
def enrolments_changed(site: Site, changes) -> None:
    from .. import webhooks

    webhooks.queue_enrolment_changes(site, changes)


@hookimpl
def role_assignments_changed(site: Site, changes) -> None:
    from .. import webhooks

    webhooks.queue_role_changes(site, changes)


def run(site: Site) -> str:
    """Deliver the due batches of every subscription."""
    from .. import webhooks

    return str(webhooks.deliver(site))


@hookimpl
def register_tasks(register):
    register("deliver_webhooks", run, schedule="* * * * *", component="core")
