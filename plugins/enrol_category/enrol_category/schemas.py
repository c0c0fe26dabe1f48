"""Site settings of category enrolments: which category roles enrol into the courses below."""

from __future__ import annotations

from enrolkit.fields import RoleList
from marshmallow import Schema


class CategorySiteSettings(Schema):
    roles = RoleList(
        load_default=lambda: ["student"],
        metadata={
            "label": "Synchronised roles",
            "help": "Role shortnames, comma-separated: holding one of them in a category enrols "
            "the user, with that role, in every course of the category and its subcategories.",
        },
    )
