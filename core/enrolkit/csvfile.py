"""Reading CSV uploads with line numbers, so every error says file, line, column and what to do."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import EnrolkitError


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
            for cells in reader:
                line = reader.line_num
                if not any(cell.strip() for cell in cells):
                    continue
                if len(cells) != len(header):
                    yield RowError(name, line, f"expected {len(header)} fields, found {len(cells)}")
                    continue
                yield line, {col: cell.strip() for col, cell in zip(header, cells, strict=True)}
        except UnicodeDecodeError:
            raise CsvError(f"{name}: not {encoding} text (after line {reader.line_num})") from None
