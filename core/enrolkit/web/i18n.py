"""The interface language and time: the user's own language (their profile's ``lang``), else the
one an anonymous visitor chose in the language menu (a cookie), else the browser's, else the
site's; dates in that language and the reader's time zone (their own, else the site's), and the
dates people type in forms read in that same zone.

The French catalog is the core's ``translations/fr/LC_MESSAGES/messages.po`` merged with each
plugin's own (``enrol_x/translations/``), every one compiled into the ``.mo`` beside it. Add new
texts by hand at the end of the ``.po`` (never ``pybabel update``: it rewrites the whole file),
then ``pybabel compile -d <the translations folder>``. ``tests/web/test_web_i18n.py`` fails while
a text has no French or a ``.mo`` is stale.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Flask, current_app, flash, g, redirect, request, url_for
from flask_babel import Babel, format_datetime, get_locale
from flask_babel import gettext as _
from jinja2 import pass_context
from markupsafe import Markup

from .. import clock
from ..catalogs import CORE_FOLDER, LANGUAGES, language_of, site_language
from ..errors import message
from ..names import finalize as format_names
from ..texts import translate
from .guards import ADMIN, public, site

#: The cookie that keeps an anonymous visitor's choice of language (a year).
LANG_COOKIE = "enrolkit_lang"
LANG_COOKIE_AGE = 365 * 24 * 3600
#: The site setting that holds the time zone dates are shown in (Moodle's ``timezone``).
TIMEZONE_SETTING = "timezone"

bp = Blueprint("i18n", __name__)


def select_locale() -> str:
    user = getattr(g, "user", None)
    return (
        language_of(user.lang if user is not None else None)
        or language_of(request.cookies.get(LANG_COOKIE))
        or request.accept_languages.best_match(LANGUAGES)
        or site_language(site())
    )


def site_timezone() -> str:
    """The site's time zone (Moodle's ``timezone`` setting), UTC until an admin sets one."""
    name = site().get_config("core", TIMEZONE_SETTING, None)
    return name if name in clock.zones() else "UTC"


def select_timezone() -> str:
    """The reader's time zone: their own (Moodle's per-user ``timezone``), else the site's."""
    user = getattr(g, "user", None)
    if user is not None and user.timezone in clock.zones():
        return user.timezone
    return site_timezone()


def valid_timezone(name: str) -> bool:
    """Whether a user's time zone from a form is one of the list or '' (the site's); flash
    the error to show when it is not."""
    if not name or name in clock.zones():
        return True
    say(
        _(
            "Time zone %(zone)s: not a time zone of the list. Choose one such as Europe/Paris, "
            "or the site's.",
            zone=name[:60],
        ),
        "error",
    )
    return False


def when(seconds: int | None, with_time: bool = True) -> str:
    """Unix seconds in the reader's language and time zone ("3 déc. 2026, 15:04"); 0 (open,
    never) as a dash."""
    if not seconds:
        return "—"
    moment = datetime.fromtimestamp(seconds, UTC)
    pattern = "d MMM y, HH:mm" if with_time else "d MMM y"
    try:
        return format_datetime(moment, pattern)
    except OverflowError:  # the last seconds of year 9999, east of UTC: shown in UTC
        return format_datetime(moment, pattern + " 'UTC'", rebase=False)


def local_input(seconds: int | None, with_time: bool = False) -> str:
    """A stored time as a date input (``2026-09-01``) or a datetime-local input
    (``2026-09-01T08:00``) wants its value, in the reader's time zone; '' for none."""
    if not seconds:
        return ""
    try:
        moment = datetime.fromtimestamp(seconds, clock.timezone(select_timezone()))
    except OverflowError:  # the last seconds of year 9999, east of UTC: the UTC day
        moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M" if with_time else "%Y-%m-%d")


def read_time(value: str | None, field: str) -> int:
    """A time typed in a form, read in the reader's time zone: a date input's day starts at
    midnight there, a datetime-local input's time is theirs (0 when empty)."""
    return clock.parse_time(value or None, field=field, zone=clock.timezone(select_timezone()))


def status_label(code: str) -> str:
    """A status code (``queued``, ``held``, ``active``...) as people read it: the code is its
    own message id in the catalogs (core and plugins)."""
    return _(code) if code else ""


def event_label(code: str) -> str:
    """A log event (``user_enrolled``) as people read it ("User enrolled", "Utilisateur
    inscrit"), looked up by its words in the catalogs; a plugin's events in its own."""
    return _(code.replace("_", " ").capitalize()) if code else ""


def say(message: Any, category: str = "success") -> None:
    """Flash ``message`` in the reader's language (a :class:`~enrolkit.texts.Text` is
    translated now: the session keeps plain strings)."""
    flash(translate(message, _), category)


def message_of(exc: BaseException) -> Any:
    """An error's message in the reader's language, without the CLI's command; with a link to
    the page where to act instead (:class:`enrolkit.errors.Where`) when the reader may open it."""
    text = translate(message(exc), _)
    where = getattr(exc, "web", None)
    if where is None or not _may_open(where.endpoint):
        return text
    href = url_for(where.endpoint, **where.values)
    return Markup('{} <a href="{}">{}</a>').format(text, href, translate(where.label, _))


def _may_open(endpoint: str) -> bool:
    """Whether the logged-in user may open the view (an admin page: admins only)."""
    view = current_app.view_functions.get(endpoint)
    audience = getattr(view, "permission", None)
    user = getattr(g, "user", None)
    if audience == ADMIN:
        return bool(user is not None and user.siteadmin)
    return view is not None


def finalize(value: Any) -> Any:
    """Jinja's ``finalize``: a :class:`~enrolkit.texts.Text` is printed in the reader's language,
    a name as :func:`enrolkit.names.format_string` reads it."""
    return format_names(translate(value, _))


@bp.post("/language")
@public
def choose_language():
    """The language menu: kept in the profile of a logged-in user, in a cookie otherwise."""
    lang = language_of(request.form.get("lang"))
    target = request.form.get("next") or ""
    if not target.startswith("/") or target.startswith("//"):
        target = url_for("people.dashboard")
    response = redirect(target)
    if lang is None:
        return response
    user = getattr(g, "user", None)
    if user is not None:
        from .. import people

        people.set_fields(site(), user, {"lang": lang})
    response.set_cookie(
        LANG_COOKIE, lang, max_age=LANG_COOKIE_AGE, httponly=True, samesite="Lax",
        secure=request.is_secure,
    )  # fmt: skip
    return response


def _translating_params(original: Callable) -> Callable:
    """Jinja's ``_("Add %(method)s", method=...)`` with a :class:`~enrolkit.texts.Text`
    parameter in the reader's language too (gettext alone would print its English)."""

    @pass_context
    def call(context, string, *args, **variables):
        return original(
            context, string, *args, **{k: translate(v, _) for k, v in variables.items()}
        )

    return call


def init_app(app: Flask) -> None:
    plugin_folders = app.extensions["enrolkit"].plugins.translation_folders()
    app.config["BABEL_TRANSLATION_DIRECTORIES"] = ";".join([CORE_FOLDER, *plugin_folders])
    Babel(app, locale_selector=select_locale, timezone_selector=select_timezone)
    app.jinja_env.filters["when"] = when
    app.jinja_env.filters["day"] = lambda seconds: when(seconds, with_time=False)
    # For <input type="date"> values: the stored day in the reader's zone, or nothing.
    app.jinja_env.filters["isodate"] = local_input
    app.jinja_env.filters["status"] = status_label
    app.jinja_env.filters["event"] = event_label
    app.jinja_env.finalize = finalize
    for name in ("_", "gettext", "ngettext"):
        app.jinja_env.globals[name] = _translating_params(app.jinja_env.globals[name])
    app.register_blueprint(bp)

    @app.context_processor
    def _language():
        return {"current_lang": str(get_locale() or LANGUAGES[0]), "languages": LANGUAGES}
