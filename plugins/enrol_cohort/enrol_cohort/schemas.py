"""Settings of cohort sync: one course instance, and the site-wide ones."""

from __future__ import annotations

from enrolkit import SUSPEND, SUSPEND_NOROLES, UNENROL, removal_field
from marshmallow import Schema, fields

#: ``group=none``: no group; ``group=new``: a group named after the cohort, owned by the instance.
NO_GROUP, NEW_GROUP = "none", "new"


class CohortInstanceSettings(Schema):
    cohort = fields.String(
        required=True,
        metadata={
            "label": "Cohort",
            "help": "Idnumber of a site cohort, or of a cohort of the course's category or one "
            "of its parents.",
        },
    )
    group = fields.String(
        load_default=NO_GROUP,
        metadata={
            "label": "Add to group",
            "help": "none, new (a group named after the cohort), or the name of a course group.",
        },
    )


class CohortSiteSettings(Schema):
    removal = removal_field(UNENROL, (UNENROL, SUSPEND, SUSPEND_NOROLES))
    role = fields.String(
        load_default="student",
        metadata={"label": "Default role", "help": "Role of new cohort instances."},
    )
