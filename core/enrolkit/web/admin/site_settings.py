"""The site's language (the default of people who chose none, and of mail) and its time zone
(how every page shows dates), as Moodle's ``lang`` and ``timezone`` site settings."""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import redirect, render_template, request, url_for
from flask_babel import gettext as _

from ...catalogs import LANGUAGES, language_of, site_language
from ..guards import admin_required, site
from ..i18n import TIMEZONE_SETTING, say
from . import bp

#: The site setting (component ``core``) that holds the site's language.
LANG_SETTING = "lang"


def _zone(name: str) -> str | None:
    """``name`` when it is a time zone of the IANA database, else None."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name


@bp.route("/site", methods=["GET", "POST"])
@admin_required
def site_settings():
    s = site()
    if request.method == "POST":
        lang = language_of(request.form.get("lang"))
        zone = _zone(request.form.get("timezone", "").strip())
        if lang is None:
            say(_("Choose one of the offered languages."), "error")
        elif zone is None:
            say(_("Choose a time zone of the list, e.g. Europe/Paris."), "error")
        else:
            s.set_config("core", LANG_SETTING, lang)
            s.set_config("core", TIMEZONE_SETTING, zone)
            s.session.commit()
            say(_("The site settings are saved."), "success")
            return redirect(url_for("admin.site_settings"))
    return render_template(
        "admin/site_settings.html",
        lang=site_language(s),
        timezone=s.get_config("core", TIMEZONE_SETTING, None) or "UTC",
        languages=LANGUAGES,
        zones=sorted(available_timezones()),
    )
