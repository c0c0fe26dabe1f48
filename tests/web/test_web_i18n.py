"""The interface in English and French: the user's language first, then the browser's; and a
catalogue that covers every text and ships compiled."""

from __future__ import annotations

import gettext
from pathlib import Path

import enrolkit.web
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

WEB = Path(enrolkit.web.__file__).parent
CATALOG = WEB / "translations" / "fr" / "LC_MESSAGES"
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]


def _source_messages() -> set:
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        str(WEB), METHODS, keywords={"_": None, "gettext": None, "ngettext": (1, 2)}
    ):
        found.add(message)
    return found


def test_every_text_of_the_interface_has_a_french_translation():
    with open(CATALOG / "messages.po", "rb") as handle:
        catalog = read_po(handle, locale="fr")
    translated = {m.id: m.string for m in catalog if m.id}
    missing = []
    for message in _source_messages():
        text = translated.get(message)
        if not text or (isinstance(text, tuple) and not all(text)):
            missing.append(message)
    assert not missing, f"no French for: {missing}"


def test_the_shipped_mo_matches_the_po():
    with open(CATALOG / "messages.po", "rb") as handle:
        catalog = read_po(handle, locale="fr")
    with open(CATALOG / "messages.mo", "rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for message in catalog:
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            assert compiled.ngettext(*message.id, 2) == message.string[1], message.id
        else:
            assert compiled.gettext(message.id) == message.string, message.id


def test_the_browser_language_is_used_before_login(app):
    client = app.test_client()
    french = client.get("/login", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert "Se connecter" in french.get_data(as_text=True)
    assert '<html lang="fr">' in french.get_data(as_text=True)
    english = client.get("/login", headers={"Accept-Language": "de, en;q=0.5"})
    assert "Log in" in english.get_data(as_text=True)


def test_the_users_language_wins_over_the_browser(app, world, client_as, web_runtime, post):
    client = client_as("student")
    page = client.get("/", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "My courses" in page  # the student's profile says en

    response = post(client, f"/user/{world.student.id}", lang="fr", follow=True)
    assert "Votre langue est enregistrée." in response.get_data(as_text=True)
    page = client.get("/", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert "Mes cours" in page and "Se déconnecter" in page
