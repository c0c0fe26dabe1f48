"""Reading JSON text from people and programs (API bodies, rules in the CLI, the web and settings)
with one nesting limit, checked before decoding.

Python's decoder recurses once per level: a body nested 100,000 deep ends in ``RecursionError``
(a 500, or "internal error" in the CLI) instead of a message. :func:`loads` counts the depth
first, without recursion, and refuses anything deeper than :data:`MAX_DEPTH` with
:class:`TooDeep`, a ``ValueError`` like every other malformed JSON, so callers that already
answer "not valid JSON" keep working.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

#: Far beyond any rule (20 groups deep at most, two JSON levels each) or API body.
MAX_DEPTH = 100

_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")
_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class TooDeep(ValueError):
    """JSON nested deeper than :data:`MAX_DEPTH`."""


def depth(text: str | bytes) -> int:
    """How deep arrays and objects nest in ``text`` (brackets inside strings do not count)."""
    if isinstance(text, bytes | bytearray):
        text = bytes(text).decode("utf-8", errors="replace")
    brackets = _BRACKETS.findall(_STRINGS.sub("", text))
    return max(accumulate(_STEP[b] for b in brackets), default=0)


def check_depth(text: str | bytes, limit: int = MAX_DEPTH) -> None:
    found = depth(text)
    if found > limit:
        raise TooDeep(f"JSON nested {found} levels deep; at most {limit} are accepted")


def loads(text: str | bytes, limit: int = MAX_DEPTH) -> Any:
    """``json.loads`` that refuses nesting over ``limit`` with :class:`TooDeep`."""
    check_depth(text, limit)
    return json.loads(text)
