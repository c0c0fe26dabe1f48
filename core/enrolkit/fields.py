"""Marshmallow fields that settings schemas (the core's, the API's and methods') share."""

from __future__ import annotations

import re

from marshmallow import ValidationError, fields

from . import clock

MAX_TIME = clock.MAX_TIME


class Time(fields.Field):
    """A moment as the CLI takes it: Unix seconds or ISO 8601 (naive means UTC) in, Unix
    seconds out; 0 (or empty) means none."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("metadata", {})
        kwargs["metadata"].setdefault(
            "description", "Unix seconds, or ISO 8601 such as 2026-09-01T08:00:00Z"
        )
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> int:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise ValidationError("give Unix seconds or an ISO 8601 time")
        try:
            seconds = clock.parse_time(value, field=attr or "time")
        except ValueError as exc:  # BadTime, or digits beyond what int() reads
            raise ValidationError(str(exc)) from None
        if not 0 <= seconds <= MAX_TIME:
            raise ValidationError("the time must fall between 1970 and the year 9999")
        return seconds

    def _serialize(self, value, attr, obj, **kwargs) -> int:
        return int(value or 0)


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
