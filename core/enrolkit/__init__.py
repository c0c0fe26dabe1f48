"""enrolkit: an enrolment-automation engine with one installable plugin per enrolment method.

Plugin authors need only what this module exports::

    import enrolkit

    @enrolkit.hookimpl
    def register_methods(register):
        register(MyMethod())

Only ``hookimpl`` is made on import; the other names load their module on first use, so a
plugin module that imports ``enrolkit`` costs nothing more (``enrolkit --help`` loads every
plugin, and must not load SQLAlchemy for it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

import pluggy

hookimpl = pluggy.HookimplMarker("enrolkit")

#: Each exported name and the module of the package that defines it.
_LAZY = {
    "CourseAccess": "changes",
    "EnrolmentChanges": "changes",
    "InstanceChange": "changes",
    "ProfileChange": "changes",
    "RoleChange": "changes",
    "Change": "engine",
    "Plan": "engine",
    "EnrolkitError": "errors",
    "SettingsError": "errors",
    "KEEP": "methods",
    "SUSPEND": "methods",
    "SUSPEND_NOROLES": "methods",
    "UNENROL": "methods",
    "EnrolMethod": "methods",
    "expiry_field": "methods",
    "removal_field": "methods",
}

if TYPE_CHECKING:
    from .changes import CourseAccess, EnrolmentChanges, InstanceChange, ProfileChange, RoleChange
    from .engine import Change, Plan
    from .errors import EnrolkitError, SettingsError
    from .methods import (
        KEEP,
        SUSPEND,
        SUSPEND_NOROLES,
        UNENROL,
        EnrolMethod,
        expiry_field,
        removal_field,
    )


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'enrolkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "KEEP",
    "SUSPEND",
    "SUSPEND_NOROLES",
    "UNENROL",
    "Change",
    "CourseAccess",
    "EnrolMethod",
    "EnrolkitError",
    "EnrolmentChanges",
    "InstanceChange",
    "Plan",
    "ProfileChange",
    "RoleChange",
    "SettingsError",
    "expiry_field",
    "hookimpl",
    "removal_field",
]
