"""Manual enrolment: people enrolled by an admin or teacher, from the CLI, the web or the API.
Registered by :mod:`enrolkit.builtin.manual`."""

from __future__ import annotations

from marshmallow import Schema

from ..methods import KEEP, UNENROL, EnrolMethod, expiry_field
from ..texts import Text


class ManualSiteSettings(Schema):
    expiry_action = expiry_field(UNENROL)


class ManualInstanceSettings(Schema):
    pass


class ManualMethod(EnrolMethod):
    name = "manual"
    title = Text("Manual enrolments")
    enabled_by_default = True
    multiple_instances = False
    site_schema = ManualSiteSettings
    instance_schema = ManualInstanceSettings
    default_removal = KEEP
