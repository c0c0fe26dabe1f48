"""One rule for the names people give things (courses, categories, cohorts, groups, roles, the
site), wherever they are shown: Moodle's ``format_string``.

Names arrive from CSV files and other systems with HTML entities in them (``Application &amp;
Eligibility Review``). They are stored as given, and every output decodes the entities once
(:func:`format_string`); an HTML output then escapes the result once, as any text. So a mail
subject and a text body read ``Application & Eligibility Review``, and an HTML body or a web page
holds ``Application &amp; Eligibility Review``, which a browser shows as the same words.
"""

from __future__ import annotations

import html
from typing import Any

from markupsafe import Markup


def format_string(value: str) -> str:
    """A name as people read it: HTML entities decoded once (``&amp;amp;`` becomes ``&amp;``)."""
    return html.unescape(value) if "&" in value else value


def finalize(value: Any) -> Any:
    """Jinja's ``finalize`` for the web: every plain string a page prints follows
    :func:`format_string` before autoescaping escapes it once. Markup (already HTML) is left as
    it is."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return format_string(value)
    return value
