"""The interface language: the user's own (their profile's ``lang``), else the browser's.

The French catalogue is ``translations/fr/LC_MESSAGES/messages.po``, compiled into the ``.mo``
beside it, both shipped in the package. After changing a text, refresh them with::

    pybabel extract -F core/enrolkit/web/babel.cfg -o /tmp/messages.pot core/enrolkit/web
    pybabel update -i /tmp/messages.pot -d core/enrolkit/web/translations
    pybabel compile -d core/enrolkit/web/translations

(``tests/web/test_web_i18n.py`` fails while a text has no French or the ``.mo`` is stale.)
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask, g, request
from flask_babel import Babel

from ..names import finalize as format_names
from . import LANGUAGES


def select_locale() -> str:
    user = getattr(g, "user", None)
    if user is not None and user.lang:
        lang = user.lang.replace("-", "_").split("_")[0].lower()
        if lang in LANGUAGES:
            return lang
    return request.accept_languages.best_match(LANGUAGES) or LANGUAGES[0]


def when(seconds: int | None, with_time: bool = True) -> str:
    """Unix seconds as ``YYYY-MM-DD HH:MM`` (UTC, as stored); 0 (open, never) as a dash."""
    if not seconds:
        return "—"
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%d %H:%M" if with_time else "%Y-%m-%d")


def init_app(app: Flask) -> None:
    Babel(app, locale_selector=select_locale)
    app.jinja_env.filters["when"] = when
    app.jinja_env.filters["day"] = lambda seconds: when(seconds, with_time=False)
    # For <input type="date"> values: the stored day, or nothing when there is none.
    app.jinja_env.filters["isodate"] = lambda seconds: (
        when(seconds, with_time=False) if seconds else ""
    )
    app.jinja_env.finalize = format_names

    @app.context_processor
    def _language():
        from flask_babel import get_locale

        return {"current_lang": str(get_locale() or LANGUAGES[0])}
