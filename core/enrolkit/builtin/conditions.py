"""The built-in rule condition types (:mod:`enrolkit.rules.standard`), registered like any
plugin's."""

from __future__ import annotations

from .. import hookimpl


@hookimpl
def register_conditions(register):
    from ..rules.standard import STANDARD_TYPES

    for condition_type in STANDARD_TYPES:
        register(condition_type())
