"""Site settings of category enrolments: which category roles enrol into the courses below."""

from __future__ import annotations

import re

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


class CategorySiteSettings(Schema):
    roles = RoleList(
        load_default=lambda: ["student"],
        metadata={
            "label": "Synchronised roles",
            "help": "Role shortnames, comma-separated: holding one of them in a category enrols "
            "the user, with that role, in every course of the category and its subcategories.",
        },
    )
