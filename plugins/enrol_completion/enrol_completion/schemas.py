"""The settings of a completion instance and of the method, as marshmallow schemas.

They load the strings people type (``enrolkit instance add B completion source=A delay=86400``)
and dump plain JSON for ``enrol_instances.settings``; the settings form is rendered from them.
"""

from __future__ import annotations

from enrolkit import SUSPEND_NOROLES
from enrolkit.fields import Duration, Time
from enrolkit.methods import REMOVAL_ACTIONS
from enrolkit.models import Group
from marshmallow import Schema, ValidationError, fields, validate, validates_schema


class CompletionInstanceSettings(Schema):
    source = fields.String(
        required=True,
        validate=validate.Length(min=1, max=255),
        metadata={
            "label": "Completed course",
            "pick": "courses",
            "help": "Shortname of the course whose completion enrols here. For several "
            "courses (any one suffices), add one instance per course.",
        },
    )
    duration = Duration(
        metadata={
            "label": "Enrolment duration",
            "help": "How long the enrolment lasts, e.g. 30d, 12h, 1w or P30D; empty = open-ended.",
        }
    )
    delay = Duration(
        metadata={
            "label": "Delay",
            "help": "Time after the completion before the enrolment starts, e.g. 2d; empty = at "
            "once.",
        }
    )
    enrolstart = Time(
        load_default=0,
        metadata={
            "label": "Acts from",
            "help": "Completions before this time are ignored (ISO 8601 or Unix seconds).",
        },
    )
    enrolend = Time(
        load_default=0,
        metadata={
            "label": "Acts until",
            "help": "Completions after this time are ignored; empty or 0 = no end.",
        },
    )
    group = fields.String(
        load_default="",
        validate=validate.Length(max=Group.NAME_LENGTH),
        metadata={
            "label": "Group",
            "help": "Name of a group of this course to add enrolled users to; created when "
            "first needed. Empty = no group.",
        },
    )
    keepgroup = fields.Boolean(
        load_default=True,
        metadata={
            "label": "Keep groups",
            "help": "Add the user to this course's groups named like their groups in the "
            "completed course (groups are not created).",
        },
    )
    unenrol_source = fields.Boolean(
        load_default=False,
        metadata={
            "label": "Unenrol from the completed course",
            "help": "Once enrolled here, the user is unenrolled from the completed course "
            "(enrolments there that may be removed by hand).",
        },
    )
    welcome = fields.Boolean(
        load_default=True,
        metadata={"label": "Send a welcome message", "help": "Mail each user when enrolled."},
    )
    welcome_template = fields.String(
        load_default="",
        metadata={
            "label": "Welcome message",
            "help": "Jinja2; besides the usual variables, completed_course (shortname, "
            "fullname, url, ...) and completed (its full name). Empty = the default text.",
            "widget": "textarea",
        },
    )

    @validates_schema
    def _window(self, data, **kwargs) -> None:
        start, end = data.get("enrolstart", 0), data.get("enrolend", 0)
        if start and end and end <= start:
            raise ValidationError("must come after enrolstart", "enrolend")


class CompletionSiteSettings(Schema):
    role = fields.String(
        load_default="student",
        metadata={"label": "Default role", "help": "Role of new instances (shortname)."},
    )
    expiry_action = fields.String(
        load_default=SUSPEND_NOROLES,
        validate=validate.OneOf(REMOVAL_ACTIONS),
        metadata={
            "label": "When an enrolment ends",
            "help": "What happens when an enrolment's duration has passed.",
            "choices": REMOVAL_ACTIONS,
        },
    )
