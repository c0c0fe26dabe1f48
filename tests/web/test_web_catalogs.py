"""Every catalog, the core's and each plugin's: complete (no text without French, nothing fuzzy),
compiled (the shipped ``.mo`` says what the ``.po`` says), and covering what the code shows: the
texts marked in the sources (``_``, ``gettext``, ``ngettext``, ``N_``, ``Text``) and what each
method declares (its title, its settings' labels, help texts and choices)."""

from __future__ import annotations

import gettext
from pathlib import Path

import enrolkit
import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from enrolkit.builtin.settings_form import CHOICE
from enrolkit.catalogs import CORE_FOLDER
from enrolkit.plugins import Plugins
from enrolkit.roles import PRESETS

KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "Text": None}
METHODS = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
CORE = Path(enrolkit.__file__).parent


def _plugins() -> Plugins:
    loaded = Plugins(entry_points=True)
    loaded.load_all()
    return loaded


def _folders() -> list[Path]:
    return [Path(CORE_FOLDER)] + [Path(f) for f in _plugins().translation_folders()]


def _read(folder: Path):
    with open(folder / "fr" / "LC_MESSAGES" / "messages.po", "rb") as handle:
        return read_po(handle, locale="fr")


def _key(message) -> tuple:
    return (message.context, message.id if isinstance(message.id, str) else message.id[0])


def _merged() -> dict[tuple, object]:
    merged = {}
    for folder in _folders():
        merged.update({_key(m): m.string for m in _read(folder) if m.id})
    return merged


def _translated(string) -> bool:
    return bool(string) and (not isinstance(string, tuple) or all(string))


@pytest.mark.parametrize("folder", _folders(), ids=lambda f: f.parent.name)
def test_a_catalog_has_french_for_every_entry_and_nothing_fuzzy(folder):
    catalog = _read(folder)
    missing = [m.id for m in catalog if m.id and not _translated(m.string)]
    fuzzy = [m.id for m in catalog if m.id and m.fuzzy]
    assert not missing, f"{folder}: no French for {missing}"
    assert not fuzzy, f"{folder}: fuzzy (unchecked) French for {fuzzy}"


@pytest.mark.parametrize("folder", _folders(), ids=lambda f: f.parent.name)
def test_a_shipped_mo_matches_its_po(folder):
    compiled_path = folder / "fr" / "LC_MESSAGES" / "messages.mo"
    with open(compiled_path, "rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    for message in _read(folder):
        if not message.id:
            continue
        if isinstance(message.id, tuple):
            got = compiled.ngettext(*message.id, 2)
            assert got == message.string[1], (folder, message.id)
        elif message.context:
            assert compiled.pgettext(message.context, message.id) == message.string
        else:
            assert compiled.gettext(message.id) == message.string, (folder, message.id)


def _packages() -> list[Path]:
    roots = {CORE}
    for folder in _folders()[1:]:
        roots.add(folder.parent)
    return sorted(roots)


@pytest.mark.parametrize("package", _packages(), ids=lambda p: p.name)
def test_every_marked_text_of_a_package_has_french(package):
    merged = _merged()
    missing = set()
    for _file, _line, message, _comments, context in extract_from_dir(
        str(package), METHODS, keywords=KEYWORDS
    ):
        key = (context, message if isinstance(message, str) else message[0])
        if key[1] and not _translated(merged.get(key)):
            missing.add(key[1])
    assert not missing, f"{package.name}: no French for {sorted(missing)}"


def test_every_method_title_setting_and_preset_role_has_french():
    merged = _merged()
    needed: set[tuple] = {(None, english) for _short, english, _arch in PRESETS}
    for method in _plugins().methods.values():
        needed.add((None, str(method.title)))
        for schema in (method.instance_schema, method.site_schema):
            for name, field in schema().fields.items() if schema else ():
                meta = field.metadata
                needed.add((None, meta.get("label") or name.replace("_", " ").capitalize()))
                if meta.get("help"):
                    needed.add((None, meta["help"]))
                needed.update((CHOICE, str(choice)) for choice in meta.get("choices") or ())
    missing = sorted(text for key in needed if not _translated(merged.get(key)) for text in [key])
    assert not missing, f"no French for: {missing}"


def test_a_scaffolded_method_ships_its_own_french_catalog_compiled(tmp_path):
    from enrolkit.scaffolding import create

    target = create("emaildomain", tmp_path)
    folder = target / "enrol_emaildomain" / "translations" / "fr" / "LC_MESSAGES"
    with open(folder / "messages.mo", "rb") as handle:
        compiled = gettext.GNUTranslations(handle)
    assert compiled.gettext("Emaildomain enrolment") == "Inscription emaildomain"
    assert compiled.gettext("Departments") == "Départements"
    assert "translations/*/LC_MESSAGES/*.mo" in (target / "pyproject.toml").read_text()
