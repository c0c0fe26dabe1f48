"""Settings of course meta links: one link (an instance in the target course), and the site's."""

from __future__ import annotations

from enrolkit import SUSPEND, SUSPEND_NOROLES, UNENROL, removal_field
from enrolkit.fields import RoleList
from enrolkit.groups import group_setting_field
from marshmallow import Schema, fields


class MetaInstanceSettings(Schema):
    source = fields.String(
        required=True,
        metadata={
            "label": "Linked course",
            "pick": "courses",
            "help": "Shortname of the course whose enrolments this course mirrors.",
        },
    )
    group = group_setting_field("the linked course")


class MetaSiteSettings(Schema):
    removal = removal_field(SUSPEND_NOROLES, (UNENROL, SUSPEND, SUSPEND_NOROLES))
    nosyncroles = RoleList(
        load_default=list,
        metadata={
            "label": "Roles not synchronised",
            "help": "Role shortnames, comma-separated, that links do not copy.",
        },
    )
    syncall = fields.Boolean(
        load_default=True,
        metadata={
            "label": "Synchronise all enrolled users",
            "help": "Off: only users holding at least one synchronised role are mirrored.",
        },
    )
