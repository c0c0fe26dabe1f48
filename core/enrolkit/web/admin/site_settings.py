"""The site's language (the default of people who chose none, and of mail) and its time zone
(how every page shows dates), as Moodle's ``lang`` and ``timezone`` site settings."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask_babel import gettext as _

from ... import clock
from ...catalogs import LANGUAGES, language_of, site_language
from ..guards import admin_required, site
from ..i18n import TIMEZONE_SETTING, say, site_timezone
from . import bp

#: The site setting (component ``core``) that holds the site's language.
LANG_SETTING = "lang"


@bp.route("/site", methods=["GET", "POST"])
@admin_required
def site_settings():
    s = site()
    if request.method == "POST":
        lang = language_of(request.form.get("lang"))
        zone = request.form.get("timezone", "").strip()
        if lang is None:
            say(_("Choose one of the offered languages."), "error")
        elif zone not in clock.zones():
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
        timezone=site_timezone(),
        languages=LANGUAGES,
        zones=clock.zones(),
    )
