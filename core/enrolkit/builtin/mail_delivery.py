"""The core task that empties the mail outbox over SMTP, every minute."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import hookimpl

if TYPE_CHECKING:
    from ..site import Site


def run(site: Site) -> str:
    """Deliver due mail; without ``ENROLKIT_SMTP_URL`` say that it stays queued."""
    from ..mail import deliver

    return str(deliver(site))


@hookimpl
def register_tasks(register):
    register("deliver_mail", run, schedule="* * * * *", component="core")
