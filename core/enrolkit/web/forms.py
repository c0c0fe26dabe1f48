"""Method settings forms: rendered through the ``render_settings`` hook from the method's schema,
and read back from a post, so a new method's form works with no change to the web app."""

from __future__ import annotations

from typing import Any

from flask import request
from markupsafe import Markup
from marshmallow import Schema, fields

from ..methods import EnrolMethod
from ..site import Site


def render(
    site: Site, method: EnrolMethod, scope: str, values: dict[str, Any], errors: dict
) -> Markup:
    """The method's form fields for ``scope`` ("site" or "instance"); empty without a schema.

    The hook's HTML is the plugin's (the core default escapes every value it writes)."""
    schema_class = method.site_schema if scope == "site" else method.instance_schema
    if schema_class is None:
        return Markup("")
    html = site.plugins.render_settings(
        site=site,
        method=method,
        scope=scope,
        schema=schema_class(),
        values=values,
        errors=errors,
    )
    return Markup(html or "")


def posted(schema_class: type[Schema] | None, exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """The schema's fields from the post, as strings. An unticked checkbox is not posted at all,
    so a boolean field missing from the post means false. A secret left empty is not posted
    (it stays as it is); its "Clear it" box posts it empty."""
    if schema_class is None:
        return {}
    from ..fields import Secret, Time

    values: dict[str, str] = {}
    for name, field in schema_class().fields.items():
        if field.dump_only or name in exclude:
            continue
        if isinstance(field, Secret):  # write-only: empty keeps the secret, the box clears it
            if request.form.get(f"{name}__clear"):
                values[name] = ""
            elif request.form.get(name):
                values[name] = request.form[name]
            continue
        if name in request.form and isinstance(field, Time):
            values[name] = _local_time(request.form[name].strip(), name)
        elif name in request.form:
            values[name] = request.form[name].strip()
        elif isinstance(field, fields.Boolean):
            values[name] = "false"
    return values


def _local_time(value: str, name: str) -> str:
    """A time field's datetime-local value ("2026-09-01T08:00") read in the reader's time zone,
    as Unix seconds; a value that is not a time is passed on as typed, for the schema to refuse
    it with its own message."""
    from ..errors import EnrolkitError
    from .i18n import read_time

    try:
        return str(read_time(value, name)) if value else value
    except EnrolkitError:
        return value


def has_field(method: EnrolMethod | None, name: str) -> bool:
    """Whether the method's instances have the setting ``name`` (e.g. ``welcome_template``)."""
    if method is None or method.instance_schema is None:
        return False
    return name in method.instance_schema().fields
