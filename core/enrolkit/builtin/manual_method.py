"""Manual enrolment: people enrolled by an admin or teacher, from the CLI, the web or the API.
Registered by :mod:`enrolkit.builtin.manual`."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ..methods import KEEP, REMOVAL_ACTIONS, UNENROL, EnrolMethod


class ManualSiteSettings(Schema):
    expiry_action = fields.String(
        load_default=UNENROL,
        validate=validate.OneOf(REMOVAL_ACTIONS),
        metadata={
            "label": "When an enrolment ends",
            "help": "What happens when an enrolment's end date passes.",
            "choices": REMOVAL_ACTIONS,
        },
    )


class ManualInstanceSettings(Schema):
    pass


class ManualMethod(EnrolMethod):
    name = "manual"
    title = "Manual enrolments"
    enabled_by_default = True
    multiple_instances = False
    site_schema = ManualSiteSettings
    instance_schema = ManualInstanceSettings
    default_removal = KEEP
