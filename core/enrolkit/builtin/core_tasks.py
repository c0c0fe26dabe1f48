"""The core's own scheduled tasks, registered like any plugin's."""

from __future__ import annotations

from .. import hookimpl


@hookimpl
def register_tasks(register):
    from ..expiry import enforce_end_dates
    from ..pending import apply_due

    register("apply_pending_actions", apply_due, schedule="* * * * *", component="core")
    register("enforce_end_dates", enforce_end_dates, schedule="*/10 * * * *", component="core")
