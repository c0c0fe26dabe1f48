"""Outgoing webhooks as a core plugin: the change hooks queue events, a task delivers them."""

from __future__ import annotations

from .. import hookimpl, webhooks
from ..site import Site


@hookimpl
def enrolments_changed(site: Site, changes) -> None:
    webhooks.queue_enrolment_changes(site, changes)


@hookimpl
def role_assignments_changed(site: Site, changes) -> None:
    webhooks.queue_role_changes(site, changes)


def run(site: Site) -> str:
    return str(webhooks.deliver(site))


@hookimpl
def register_tasks(register):
    register("deliver_webhooks", run, schedule="* * * * *", component="core")
