"""Manual enrolment (:mod:`.manual_method`), registered like any plugin's method."""

from __future__ import annotations

from .. import hookimpl


@hookimpl
def register_methods(register):
    from .manual_method import ManualMethod

    register(ManualMethod())
