"""CSV in and out. Reading uploads with line numbers, so every error says file, line, column and
what to do; writing files for people to open in a spreadsheet without any cell running as a
formula (OWASP "CSV injection")."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from .errors import EnrolkitError
from .texts import Text

#: Longest field Python's csv module reads (131,072 characters unless changed): a longer one is
#: a per-row error, never a crash.
FIELD_LIMIT = csv.field_size_limit()
#: First characters that make a spreadsheet read a cell as a formula (OWASP), and the quote that
#: neutralises them; a cell starting with the quote itself is quoted too, so it reads back exactly.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FORMULA_QUOTE = "'"


@dataclass(frozen=True)
class RowError:
    file: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message}"


class CsvError(EnrolkitError):
    """A file that cannot be read at all (missing, wrong header)."""


def read(
    path: str | Path,
    *,
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
    prefixes: tuple[str, ...] = (),
    encoding: str = "utf-8-sig",
) -> Iterator[tuple[int, dict[str, str]] | RowError]:
    """Yield ``(line, row)`` for good rows and :class:`RowError` for rows with the wrong number of
    fields. The header must name every required column; unknown columns are refused up front."""
    path = Path(path)
    name = path.name
    try:
        handle = path.open(newline="", encoding=encoding)
    except OSError as exc:
        raise CsvError(f"{path}: cannot open ({exc.strerror})") from None
    with handle:
        reader = csv.reader(handle)
        try:
            header = [cell.strip().lower() for cell in next(reader)]
        except StopIteration:
            raise CsvError(f"{name}: the file is empty; expected a header line") from None
        except UnicodeDecodeError:
            raise CsvError(f"{name}: not {encoding} text") from None
        except csv.Error as exc:
            raise CsvError(f"{name}:1: {unreadable(exc)}") from None
        missing = [col for col in required if col not in header]
        if missing:
            raise CsvError(
                f"{name}:1: missing required column(s) {', '.join(missing)}; "
                f"the header must name {', '.join(required)}"
            )
        known = set(required) | set(optional)
        unknown = [c for c in header if c not in known and not c.startswith(prefixes or ("\0",))]
        if unknown:
            raise CsvError(
                f"{name}:1: unknown column(s) {', '.join(unknown)}; "
                f"allowed: {', '.join(required + optional)}"
                + (f", {', '.join(p + '...' for p in prefixes)}" if prefixes else "")
            )
        try:
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    break
                except csv.Error as exc:
                    yield RowError(name, reader.line_num, unreadable(exc))
                    continue
                line = reader.line_num
                if not any(cell.strip() for cell in cells):
                    continue
                if len(cells) != len(header):
                    yield RowError(name, line, f"expected {len(header)} fields, found {len(cells)}")
                    continue
                yield line, {col: cell.strip() for col, cell in zip(header, cells, strict=True)}
        except UnicodeDecodeError:
            raise CsvError(f"{name}: not {encoding} text (after line {reader.line_num})") from None


def unreadable(exc: csv.Error) -> Text:
    """Why the csv module could not read a row, in words a person can act on (a :class:`Text`,
    shown in its reader's language; the csv module's own words stay as they are)."""
    if "field larger than field limit" in str(exc):
        return Text(
            "a field is longer than %(limit)s characters; shorten it or fix its quotes",
            limit=f"{FIELD_LIMIT:,}",
        )
    return Text(
        "cannot be read as CSV (%(error)s); check the quotes and separators", error=str(exc)
    )


def neutralise(value: Any) -> Any:
    """A cell safe to open in a spreadsheet: text starting with ``= + - @``, tab or CR (or the
    quote) gets a leading ``'``, so it shows as text instead of running as a formula. Other
    values pass unchanged."""
    if isinstance(value, str) and value.startswith((*FORMULA_STARTS, FORMULA_QUOTE)):
        return FORMULA_QUOTE + value
    return value


def restore(value: str) -> str:
    """The text :func:`neutralise` was given, for a cell read back from a file we wrote."""
    return value.removeprefix(FORMULA_QUOTE)


class SafeWriter:
    """``csv.writer`` for files people open: every cell goes through :func:`neutralise`. The one
    way the project writes CSV."""

    def __init__(self, handle: TextIO, **options: Any) -> None:
        self._writer = csv.writer(handle, **options)

    def writerow(self, row: Any) -> None:
        self._writer.writerow([neutralise(cell) for cell in row])

    def writerows(self, rows: Any) -> None:
        for row in rows:
            self.writerow(row)
