"""Settings of course meta links: one link (an instance in the target course), and the site's."""

from __future__ import annotations

import re

from enrolkit import SUSPEND, SUSPEND_NOROLES, UNENROL, removal_field
from marshmallow import Schema, ValidationError, fields


class RoleList(fields.Field):
    """Role shortnames, typed ``student,teacher`` (CLI, forms) and stored as that text."""

    def _serialize(self, value, attr, obj, **kwargs):
        return ",".join(value or ())

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            items = value.split(",")
        elif isinstance(value, list | tuple):
            items = value
        else:
            raise ValidationError("expected role shortnames separated by commas")
        names = [str(item).strip().lower() for item in items if str(item).strip()]
        bad = [name for name in names if not re.fullmatch(r"[a-z0-9_]+", name)]
        if bad:
            raise ValidationError(f"not a role shortname: {', '.join(bad)}")
        return list(dict.fromkeys(names))


class MetaInstanceSettings(Schema):
    source = fields.String(
        required=True,
        metadata={
            "label": "Linked course",
            "help": "Shortname of the course whose enrolments this course mirrors.",
        },
    )


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
