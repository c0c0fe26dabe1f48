"""Field lengths, read from the models: one check for every entrance (CSV imports, CLI, API, web).

A column declared ``String(n)`` holds at most ``n`` characters. SQLite does not enforce it
(it stored 10 MB in ``firstname``); PostgreSQL does, by aborting the whole transaction (one
101-character name cost a whole CSV import, naming nothing). Checking before writing turns both
into the answer each entrance gives for bad input: a rejected row in an import, a 422 field
error in the API, a form error on the web. Messages give the length and the limit, never the
value, so megabytes are not echoed back.
"""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.orm import InstrumentedAttribute

from .errors import EnrolkitError


class TooLong(EnrolkitError):
    """A value longer than its column holds."""


def limit(column: InstrumentedAttribute) -> int | None:
    """The ``n`` of a ``String(n)`` column; None when the column has no length (Text)."""
    kind = column.property.columns[0].type
    return kind.length if isinstance(kind, String) else None


def check(column: InstrumentedAttribute, value: object, label: str | None = None) -> None:
    """Refuse a text value longer than ``column`` holds, as ``label: N characters; ...``."""
    most = limit(column)
    if most is not None and isinstance(value, str) and len(value) > most:
        name = label or f"column {column.key}"
        raise TooLong(f"{name}: {len(value)} characters; at most {most} are accepted")


def check_values(model: type, values: dict[str, object], prefix: str = "column ") -> None:
    """:func:`check` every value whose key is a column of ``model``."""
    columns = model.__mapper__.all_orm_descriptors
    for key, value in values.items():
        column = columns.get(key)
        if isinstance(column, InstrumentedAttribute):
            check(column, value, f"{prefix}{key}")


def shown(value: str, most: int = 40) -> str:
    """A value quoted in a message, cut to ``most`` characters."""
    return repr(value if len(value) <= most else value[:most] + "…")
