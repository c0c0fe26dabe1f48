"""Is the database's schema the one the installed code expects? Answered without Alembic.

Every command runs this check, so it must cost next to nothing when the answer is yes (nearly
always): it reads the ``alembic_version`` table and compares it with the heads found by reading
the version files' ``revision``, ``down_revision`` and ``depends_on`` assignments (a few small
files parsed with :mod:`ast`). Importing Alembic's machinery would cost more than the command.

Alembic keeps one row per head in ``alembic_version`` and leaves out a revision that another
one revises or depends on (the core's first revision, once plugin branches depend on it), so the
expected rows are the revisions no other revision names. A head the table lacks means the code
is newer than the database (a new core revision or a newly installed plugin): the command stops
and says to run ``enrolkit db upgrade``. Rows the code does not know (a newer enrolkit, or an
uninstalled plugin) are left to ``db upgrade`` to complain about: they do not stop the commands.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import EnrolkitError

if TYPE_CHECKING:
    from sqlalchemy import Engine

#: The core's version files.
CORE_VERSIONS = Path(__file__).parent / "migrations" / "versions"

_NAMES = ("revision", "down_revision", "depends_on")


class SchemaOutdated(EnrolkitError):
    """The database lacks revisions the installed code needs."""


def heads(folders: Iterable[str | Path]) -> set[str]:
    """The revisions of ``folders``' version files that no other revision revises or depends
    on: what ``alembic_version`` holds once ``enrolkit db upgrade`` has run."""
    revisions: set[str] = set()
    named: set[str] = set()
    for folder in folders:
        for path in Path(folder).glob("*.py"):
            values = _assignments(path)
            if isinstance(values.get("revision"), str):
                revisions.add(values["revision"])
                for key in ("down_revision", "depends_on"):
                    named.update(_as_tuple(values.get(key)))
    return revisions - named


def check(engine: Engine, folders: Iterable[str | Path]) -> None:
    """Raise :class:`SchemaOutdated` when the database lacks a head of ``folders``.

    A database without ``alembic_version`` passes: a fresh one fails on its first query, which
    the CLI turns into "run: enrolkit db upgrade", and test sites are made without migrations.
    """
    from sqlalchemy.exc import DBAPIError

    try:
        with engine.connect() as connection:
            stored = set(
                connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalars()
            )
    except DBAPIError:
        return
    missing = heads(folders) - stored
    if missing:
        raise SchemaOutdated(
            "the database schema is older than the installed enrolkit and plugins "
            f"(missing revision {', '.join(sorted(missing))}); run: enrolkit db upgrade"
        )


def _assignments(path: Path) -> dict[str, object]:
    """The literal values of the module-level ``revision``, ``down_revision`` and
    ``depends_on`` of a version file (plain or annotated assignments). Only the part before the
    first function is parsed: that is where Alembic's template puts them, and parsing a whole
    initial-schema file would cost more than the rest of a command's start."""
    header = path.read_text(encoding="utf-8").split("\ndef ", 1)[0]
    found: dict[str, object] = {}
    for node in ast.parse(header, str(path)).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in _NAMES:
            try:
                found[target.id] = ast.literal_eval(value)
            except ValueError:
                continue
    return found


def _as_tuple(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list | tuple):
        return tuple(item for item in value if isinstance(item, str))
    return ()
