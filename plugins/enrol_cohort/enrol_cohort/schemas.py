"""Settings of cohort sync: one course instance, and the site-wide ones."""

from __future__ import annotations

from enrolkit import SUSPEND, SUSPEND_NOROLES, UNENROL, removal_field
from enrolkit.groups import group_setting_field
from marshmallow import Schema, fields


class CohortInstanceSettings(Schema):
    cohort = fields.String(
        required=True,
        metadata={
            "label": "Cohort",
            "pick": "cohorts",
            "help": "Idnumber of a site cohort, or of a cohort of the course's category or one "
            "of its parents.",
        },
    )
    group = group_setting_field("the cohort")


class CohortSiteSettings(Schema):
    removal = removal_field(UNENROL, (UNENROL, SUSPEND, SUSPEND_NOROLES))
    role = fields.String(
        load_default="student",
        metadata={"label": "Default role", "help": "Role of new cohort instances."},
    )
