"""enrolkit: an enrolment-automation engine with one installable plugin per enrolment method.

Plugin authors need only what this module exports::

    import enrolkit

    @enrolkit.hookimpl
    def register_methods(register):
        register(MyMethod())
"""

import pluggy

from .changes import CourseAccess, EnrolmentChanges, InstanceChange, ProfileChange, RoleChange
from .engine import Change, Plan
from .errors import EnrolkitError, SettingsError
from .methods import KEEP, SUSPEND, SUSPEND_NOROLES, UNENROL, EnrolMethod, removal_field

hookimpl = pluggy.HookimplMarker("enrolkit")

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
    "hookimpl",
    "removal_field",
]
