"""``enrolkit plugin new NAME --kind KIND``: a new enrolment-method distribution from the
templates in ``enrolkit/scaffold/`` (package data).

Each kind of method is a folder of ``scaffold/`` holding an ``about.txt`` (one line, shown by
``enrolkit plugin new --help``) and the templates of that kind; ``scaffold/common/`` holds the
files every kind shares (a kind's file of the same path replaces it). A new folder is a new
``--kind``: nothing else lists them.

Template files end in ``.tmpl`` (so no linter or test runner mistakes them for code; the
``tests.tmpl`` folder becomes ``tests``, so no packaging check takes it for enrolkit's own) and hold
``%%name%%`` (the method name), ``%%Name%%`` (its CamelCase form, for class names), ``%%title%%``
and ``%%enrolkit_version%%``; the same markers in a path name the generated file.
"""

from __future__ import annotations

import importlib.metadata
import keyword
import re
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from .errors import EnrolkitError

NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
SUFFIX = ".tmpl"
COMMON = "common"
ABOUT = "about.txt"
#: The kind ``plugin new`` makes when none is given: the shape of last month's only scaffold.
DEFAULT_KIND = "sync"


def _root() -> Traversable:
    return files("enrolkit") / "scaffold"


def kinds() -> dict[str, str]:
    """Each kind of method the scaffold makes -> its one-line description, by name."""
    return {
        entry.name: (entry / ABOUT).read_text(encoding="utf-8").strip()
        for entry in sorted(_root().iterdir(), key=lambda e: e.name)
        if entry.is_dir() and entry.name != COMMON and (entry / ABOUT).is_file()
    }


def check_name(name: str) -> str:
    """The method name: the entry-point name, ``enrol_<name>`` the package and distribution."""
    if not NAME.match(name) or keyword.iskeyword(name) or name.endswith("_"):
        raise EnrolkitError(
            f"{name!r} is not a method name: use lowercase letters, digits and underscores, "
            "starting with a letter (at most 40), e.g. emaildomain"
        )
    return name


def markers(name: str) -> dict[str, str]:
    camel = "".join(part.capitalize() for part in name.split("_"))
    return {
        "%%name%%": name,
        "%%Name%%": camel,
        "%%title%%": " ".join(part.capitalize() for part in name.split("_")) + " enrolment",
        "%%enrolkit_version%%": importlib.metadata.version("enrolkit"),
    }


def _fill(text: str, values: dict[str, str]) -> str:
    for marker, value in values.items():
        text = text.replace(marker, value)
    return text


def _templates(folder: Traversable, prefix: tuple[str, ...] = ()):
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name == "__pycache__":
            continue
        if entry.is_dir():
            yield from _templates(entry, (*prefix, entry.name.removesuffix(SUFFIX)))
        elif entry.name.endswith(SUFFIX):
            yield (*prefix, entry.name.removesuffix(SUFFIX)), entry


def create(name: str, directory: Path, kind: str = DEFAULT_KIND) -> Path:
    """Write the distribution ``enrol_<name>`` of ``kind`` into ``directory``; return its
    folder. Refuses to write into a folder that exists, so nothing of the author's is
    overwritten."""
    check_name(name)
    offered = kinds()
    if kind not in offered:
        raise EnrolkitError(
            f"{kind!r} is not a kind of method; choose one of {', '.join(offered) or 'none'}"
        )
    values = markers(name)
    target = Path(directory) / f"enrol_{name}"
    if target.exists():
        raise EnrolkitError(f"{target} exists; choose another name or --dir")
    chosen = dict(_templates(_root() / COMMON))
    chosen.update(_templates(_root() / kind))
    made = []
    for parts, template in sorted(chosen.items()):
        path = target.joinpath(*(_fill(part, values) for part in parts))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(_fill(template.read_text(encoding="utf-8"), values), encoding="utf-8")
        made.append(path)
    for catalog in (path for path in made if path.suffix == ".po"):
        _compile(catalog)
    return target


def _compile(po: Path) -> None:
    """The ``.mo`` beside a scaffolded ``.po``, as ``pybabel compile`` makes it: the plugin
    ships both, so its French works from the first install."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    with po.open("rb") as source:
        catalog = read_po(source)
    with po.with_suffix(".mo").open("wb") as target:
        write_mo(target, catalog)
