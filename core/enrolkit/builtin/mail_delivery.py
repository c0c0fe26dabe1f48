"""The core task that empties the mail outbox over SMTP, every minute."""

from __future__ import annotations

from .. import hookimpl
from ..mail import deliver
from ..site import Site


def run(site: Site) -> str:
    """Deliver due mail; without ``ENROLKIT_SMTP_URL`` say that it stays queued."""
    return str(deliver(site))


@hookimpl
def register_tasks(register):
    register("deliver_mail", run, schedule="* * * * *", component="core")
