"""The one source of "now". ``ENROLKIT_NOW`` (ISO 8601 or Unix seconds) pins it for tests and replays.

Every time a person types (CLI options, CSV columns, form fields, ``ENROLKIT_NOW``) goes through
:func:`parse_time`, which also bounds it: a time the database, ``datetime`` and cron arithmetic
cannot all hold is refused with a message naming where it came from, never a traceback later.
"""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, tzinfo
from functools import cache
from zoneinfo import ZoneInfo, available_timezones

from .errors import EnrolkitError

#: 9999-12-31T23:59:59Z: the last time every database and ISO 8601 can hold.
MAX_TIME = 253402300799
#: 3000-01-01T00:00:00Z: "now" stays below it, leaving the schedules, enrolment periods and
#: durations added to it room to stay below :data:`MAX_TIME`.
MAX_NOW = 32503680000


class BadTime(EnrolkitError, ValueError):
    """A time that is neither Unix seconds nor ISO 8601, or that is out of range."""


#: What ``available_timezones()`` lists that is no place: a placeholder and the machine's own.
NOT_ZONES = frozenset({"Factory", "localtime"})


@cache
def zones() -> tuple[str, ...]:
    """The IANA time zones a site or a user may choose ("Europe/Paris"), sorted."""
    return tuple(sorted(available_timezones() - NOT_ZONES))


def timezone(name: str | None, default: str = "UTC") -> ZoneInfo:
    """The time zone ``name`` when it is one of :func:`zones`, else ``default``."""
    return ZoneInfo(name if name in zones() else default)


def parse_time(
    value: str | int | None,
    *,
    field: str = "time",
    latest: int = MAX_TIME,
    hint: str = "",
    zone: tzinfo | None = None,
) -> int:
    """Unix seconds from ``value``: an int, digits, or ISO 8601. Empty -> 0. A time without an
    offset ("2026-09-01", "2026-09-01T08:00") is read in ``zone``: the zone of the person who
    typed it, UTC when none is given (the CLI, files, the API).

    The result lies between 0 (1970-01-01) and ``latest`` (by default the end of year 9999);
    anything else is :class:`BadTime` naming ``field`` and the accepted range (``hint`` adds
    what else to do).
    """
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool):
        seconds, text = value, str(value)
    else:
        text = str(value).strip()
        if not text:
            return 0
        seconds = _seconds(text, field, zone or UTC)
    if not 0 <= seconds <= latest:
        last = datetime.fromtimestamp(latest, UTC).strftime("%Y-%m-%d")
        raise BadTime(
            f"{field}: {text[:40]!r} is out of range; give a time from 1970-01-01 to {last} "
            f"(Unix seconds 0 to {latest}){hint}"
        )
    return seconds


def _seconds(text: str, field: str, zone: tzinfo) -> int:
    if text.lstrip("-").isdigit():
        if len(text) > 20:  # int() of a megabyte of digits is slow; nothing that long is a time
            return -1
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadTime(
            f"{field}: {text[:40]!r} is not a time; give Unix seconds or ISO 8601 "
            "such as 2026-09-01 or 2026-09-01T08:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    try:
        return int(moment.timestamp())
    except (OverflowError, ValueError, OSError):  # year 1 in a negative offset, and the like
        return -1


def now() -> int:
    """Current time in Unix seconds, honouring ``ENROLKIT_NOW`` (checked on every read, so a bad
    value is one clear error wherever it is first needed; the CLI reads it once at start)."""
    pinned = os.environ.get("ENROLKIT_NOW")
    if pinned:
        return parse_time(
            pinned, field="ENROLKIT_NOW", latest=MAX_NOW - 1, hint=", or unset it for the real time"
        )
    return int(time.time())


def iso(seconds: int) -> str:
    """A Unix time as ISO 8601 UTC, '' for 0 (Moodle's "none"); out-of-range seconds as digits."""
    if not seconds:
        return ""
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError):
        return str(seconds)
