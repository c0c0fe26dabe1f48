"""The translation catalogs outside a web request: the core's and every plugin's, merged, for a
given language. Mail is written in its reader's language (their profile's ``lang``), or the
site's language (setting ``core/lang``) for a user who has none the site speaks."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from babel.support import NullTranslations, Translations

from .texts import Gettext

if TYPE_CHECKING:
    from .models import User
    from .site import Site

#: Languages the interface is translated into; the first is the fallback.
LANGUAGES = ("en", "fr")
#: The core's catalog folder.
CORE_FOLDER = str(Path(__file__).parent / "web" / "translations")


def language_of(value: str | None) -> str | None:
    """``fr_CA``, ``fr-FR`` or ``FR`` as ``fr`` when the site speaks it, else None."""
    if not value:
        return None
    lang = value.replace("-", "_").split("_")[0].lower()
    return lang if lang in LANGUAGES else None


def site_language(site: Site) -> str:
    """The site's language: the default of people who chose none, and of mail."""
    return language_of(site.get_config("core", "lang", None)) or LANGUAGES[0]


def reader_language(site: Site, user: User | None) -> str:
    return language_of(user.lang if user is not None else None) or site_language(site)


def gettext_for(site: Site, lang: str) -> Gettext:
    """``gettext`` of the core's and the plugins' catalogs in ``lang``."""
    folders = (CORE_FOLDER, *site.plugins.translation_folders())
    return _translations(folders, lang).gettext


@lru_cache(maxsize=16)
def _translations(folders: tuple[str, ...], lang: str) -> NullTranslations:
    merged = Translations()
    for folder in folders:
        merged.merge(Translations.load(folder, [lang]))
    return merged
