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


class Hashed(str):
    """A stored secret's hash, as :class:`Secret` dumps it: loading it again keeps it as it is
    (an update that does not touch the secret), where plain text typed by a person is hashed."""


class Secret(fields.Field):
    """A setting nobody reads back, such as an enrolment key: stored as a salted hash
    (werkzeug's scrypt), write-only in forms, the API and ``instance list``, which show only
    whether it is set (:func:`shown`). Empty text clears it. Check a typed value against the
    stored one with :func:`matches`."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("load_default", "")
        kwargs.setdefault("metadata", {})
        kwargs["metadata"].setdefault("widget", "secret")
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> str:
        from werkzeug.security import generate_password_hash

        if isinstance(value, Hashed):
            return value
        if not isinstance(value, str):
            raise ValidationError("expected text")
        if not value:
            return ""
        if len(value) > 255:
            raise ValidationError("at most 255 characters")
        return generate_password_hash(value)

    def _serialize(self, value, attr, obj, **kwargs) -> str:
        return Hashed(value) if value else ""

    def shown(self, value) -> str:
        """What people see of a stored value: whether it is set (a subclass holding several
        secrets may say which)."""
        return SET if value else NOT_SET


class SecretInput(fields.String):
    """Something a person types and nobody sees, such as an enrolment key asked by "Enrol me":
    a password input on the web, read from stdin by the CLI (``--field key=-``); never stored
    nor logged by the core."""


#: How a secret setting shows: whether it is set, never its value or hash.
SET, NOT_SET = "set", "not set"


def matches(stored: str | None, given: str | None) -> bool:
    """Whether ``given`` (typed by a person) is the secret whose hash is ``stored``."""
    from werkzeug.security import check_password_hash

    return bool(stored and given) and check_password_hash(stored, given)


def shown(schema, settings: dict | None) -> dict:
    """``settings`` as people may see them: each :class:`Secret` field as ``"set"`` or
    ``"not set"`` (the CLI's ``instance list``, the API, the course's methods page)."""
    out = dict(settings or {})
    if schema is None:
        return out
    for name, field in schema().fields.items():
        if isinstance(field, Secret) and name in out:
            out[name] = field.shown(out[name])
    return out


#: Units a duration is typed in, largest first (the compact form :func:`compact_duration` writes).
DURATION_UNITS = (("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1))
_COMPACT = re.compile(r"(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
_ISO = re.compile(r"P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?")
#: The longest duration accepted: a hundred years, far beyond any enrolment.
MAX_DURATION = 100 * 365 * 86400
DURATION_HINT = "give seconds, 30m, 12h, 2d, 1w (or combined, 1d12h) or ISO 8601 such as P2D"


def parse_duration(value: object, field: str = "duration") -> int:
    """Seconds from what a person types: seconds (``86400``), units (``30m``, ``12h``, ``2d``,
    ``1w``, combined as ``1d12h``) or ISO 8601 (``P2D``, ``PT12H``). Empty means 0 (none).

    Raises :class:`ValueError` with a one-line message naming ``field``; months and years are
    refused because their length depends on the date they start from."""
    if isinstance(value, bool):
        raise ValueError(f"{field}: {DURATION_HINT}")
    if isinstance(value, int):
        seconds = value
    else:
        text = str(value or "").strip().replace(" ", "")
        if not text:
            return 0
        if text.isdigit() and len(text) <= 12:
            seconds = int(text)
        else:
            found = (
                _ISO.fullmatch(text.upper())
                if text[:1] in "pP"
                else _COMPACT.fullmatch(text.lower())
            )
            if found is None or not any(found.groups()) or len(text) > 40:
                raise ValueError(f"{field}: {text[:40]!r} is not a duration; {DURATION_HINT}")
            sizes = [size for _unit, size in DURATION_UNITS]
            seconds = sum(
                int(part or 0) * size for part, size in zip(found.groups(), sizes, strict=True)
            )
    if not 0 <= seconds <= MAX_DURATION:
        raise ValueError(f"{field}: a duration lies between 0 and 100 years")
    return seconds


def compact_duration(seconds: int) -> str:
    """``172800`` → ``2d``: the shortest text :func:`parse_duration` reads back ('' for 0)."""
    parts = []
    rest = int(seconds or 0)
    for unit, size in DURATION_UNITS:
        if rest >= size:
            parts.append(f"{rest // size}{unit}")
            rest %= size
    return "".join(parts)


class Duration(fields.Integer):
    """A length of time, in seconds once loaded and stored (so existing settings stay valid).

    Loads what :func:`parse_duration` reads; forms show it back compact (``2d``) with the
    reader's words beside it ("2 days", "2 jours"). 0 means none (open-ended, at once)."""

    def __init__(self, **kwargs) -> None:
        kwargs.setdefault("load_default", 0)
        kwargs.setdefault("metadata", {})
        kwargs["metadata"].setdefault("widget", "duration")
        kwargs["metadata"].setdefault("description", f"Seconds or a duration: {DURATION_HINT}")
        super().__init__(strict=False, **kwargs)

    def _validated(self, value) -> int:
        try:
            return parse_duration(value, field=self.name or "duration")
        except ValueError as exc:
            raise ValidationError(str(exc).split(": ", 1)[-1]) from None


_UNIT_NAMES = {"w": "week", "d": "day", "h": "hour", "m": "minute", "s": "second"}


def duration_words(seconds: int, locale: str = "en") -> str:
    """``129600`` → "1 day and 12 hours" / "1 jour et 12 heures": exact, in the reader's language
    (Babel's CLDR unit names; ``format_timedelta`` would round 36 hours to "2 days")."""
    from babel.lists import format_list
    from babel.units import format_unit

    parts = [
        format_unit(int(part[:-1]), f"duration-{_UNIT_NAMES[part[-1]]}", locale=locale)
        for part in re.findall(r"\d+[wdhms]", compact_duration(seconds))
    ]
    return format_list(parts, locale=locale) if parts else ""
