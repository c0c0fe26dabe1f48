"""The one source of "now". ``ENROLKIT_NOW`` (ISO 8601 or Unix seconds) pins it for tests and replays."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime

from .errors import EnrolkitError


class BadTime(EnrolkitError, ValueError):
    """A time that is neither Unix seconds nor ISO 8601."""


def parse_time(value: str | int | None, *, field: str = "time") -> int:
    """Unix seconds from ``value``: an int, digits, or ISO 8601 (naive means UTC). Empty -> 0."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text:
        return 0
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadTime(
            f"{field}: {text!r} is not a time; give Unix seconds or ISO 8601 "
            "such as 2026-09-01 or 2026-09-01T08:00:00Z"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp())


def now() -> int:
    """Current time in Unix seconds, honouring ``ENROLKIT_NOW``."""
    pinned = os.environ.get("ENROLKIT_NOW")
    if pinned:
        return parse_time(pinned, field="ENROLKIT_NOW")
    return int(time.time())


def iso(seconds: int) -> str:
    """A Unix time as ISO 8601 UTC, '' for 0 (Moodle's "none")."""
    if not seconds:
        return ""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
