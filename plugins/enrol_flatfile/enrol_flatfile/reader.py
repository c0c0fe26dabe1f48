"""Reading enrolment files: the two formats, streamed, each line checked on its own.

* **With a header** (the first line names ``operation``): columns are found by name.
  ``operation, username | useridnumber, course | courseidnumber, role[, timestart][, timeend]``;
  the separator is ``,`` (or ``;`` when the header has no comma); real CSV quoting, so a quoted
  value may hold the separator or a new line.
* **Without a header**: Moodle's own positional format, so exports made for Moodle keep working:
  ``operation, role, user idnumber, course idnumber[, timestart[, timeend]]``, split on ``,``
  when the line has one, else on ``;``, line by line.

Values are trimmed; operation and role are case-insensitive; times are Unix seconds or ISO 8601,
empty for none. The file is read one line at a time, so memory does not grow with its size. A
line that cannot be used becomes a :class:`Record` with an ``error``; only a header naming
unknown columns stops the whole file (:class:`FileFormatError`), since no line of it can be read.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import BinaryIO

from enrolkit.clock import BadTime, iso, parse_time
from enrolkit.csvfile import unreadable
from enrolkit.errors import EnrolkitError
from enrolkit.texts import N_, Text

from .reasons import quoted

ADD, DEL = "add", "del"
USERNAME, IDNUMBER, SHORTNAME = "username", "idnumber", "shortname"

#: Header columns: name -> (field, how users or courses are named).
COLUMNS = {
    "operation": ("operation", None),
    "username": ("user", USERNAME),
    "useridnumber": ("user", IDNUMBER),
    "course": ("course", SHORTNAME),
    "courseidnumber": ("course", IDNUMBER),
    "role": ("role", None),
    "timestart": ("timestart", None),
    "timeend": ("timeend", None),
}
POSITIONAL = ("operation", "role", "user", "course", "timestart", "timeend")
#: Latest time accepted: the end of year 9999.
MAX_TIME = 253_402_300_799


_NAMED_TWICE = N_(
    "%(name)s:1: the header names %(fields)s twice; give operation, username (or useridnumber), "
    "course (or courseidnumber) and role, then timestart and timeend if wanted"
)
_LACKS = N_(
    "%(name)s:1: the header lacks %(fields)s; give operation, username (or useridnumber), "
    "course (or courseidnumber) and role, then timestart and timeend if wanted"
)


class FileFormatError(EnrolkitError):
    """The file cannot be read at all (its header names unknown or missing columns)."""


@dataclass(frozen=True)
class Format:
    header: bool
    #: How the file names users (``username`` or ``idnumber``) and courses (``shortname`` or
    #: ``idnumber``).
    user_by: str
    course_by: str
    columns: tuple[str, ...] = POSITIONAL
    #: The header's column names as the file gives them (lowercased).
    names: tuple[str, ...] = ()


@dataclass(slots=True)
class Record:
    """One line of the file: its number (its first line, for a quoted value spanning lines), its
    text, and either its values or why it is rejected."""

    line: int
    text: str
    op: str = ""
    user: str = ""
    course: str = ""
    role_id: int = 0
    #: Filled when the user and course names are resolved.
    user_id: int = 0
    course_id: int = 0
    timestart: int = 0
    timeend: int = 0
    #: Why the line is rejected: a :class:`~enrolkit.texts.Text` (a value quoted from the file
    #: is a clipped parameter, never part of the message), shown in its reader's language.
    error: str = ""


class Reader:
    """Iterate the records of an open binary file. ``bytes_read`` tells how far it got and
    ``sha256()`` the hash of every byte read, to compare with the hash taken when it was opened."""

    def __init__(self, handle: BinaryIO, name: str, encoding: str, roles: dict[str, int]) -> None:
        self.name = name
        self.encoding = encoding
        self.roles = roles
        self.bytes_read = 0
        self._digest = hashlib.sha256()
        self._handle = handle
        self._line = 0
        self._bad: set[int] = set()
        self._taken: list[str] = []
        self._lines = self._decoded()
        self._first = self._first_line()
        self.format = self._detect()

    # --- lines --------------------------------------------------------------------------------

    def _decoded(self) -> Iterator[str]:
        """Each line as text, remembering it (for the error report) and whether it decoded."""
        for raw in self._handle:
            self._line += 1
            self.bytes_read += len(raw)
            self._digest.update(raw)
            try:
                text = raw.decode(self.encoding)
            except UnicodeDecodeError:
                text = raw.decode(self.encoding, errors="replace")
                self._bad.add(self._line)
            if self._line == 1:
                text = text.removeprefix("\ufeff")
            self._taken.append(text)
            yield text

    def sha256(self) -> str:
        return self._digest.hexdigest()

    def _first_line(self) -> str | None:
        for text in self._lines:
            if text.strip():
                return text
            self._taken.clear()
        return None

    def _take(self) -> tuple[int, str, bool]:
        """The lines consumed since the last record: first line number, text, decoded cleanly."""
        first = self._line - len(self._taken) + 1
        text = "".join(self._taken).rstrip("\r\n")
        clean = not any(n in self._bad for n in range(first, self._line + 1))
        self._taken.clear()
        self._bad.clear()
        return first, text, clean

    # --- format -------------------------------------------------------------------------------

    def _detect(self) -> Format:
        if self._first is None:
            return Format(header=False, user_by=IDNUMBER, course_by=IDNUMBER)
        try:
            cells = _split(self._first, _separator(self._first))
        except csv.Error:  # not a header: the line is rejected when it is read as a record
            return Format(header=False, user_by=IDNUMBER, course_by=IDNUMBER)
        names = [cell.strip().lower() for cell in cells]
        if "operation" not in names:
            return Format(header=False, user_by=IDNUMBER, course_by=IDNUMBER)
        self._taken.clear()
        self._bad.clear()
        unknown = [name for name in names if name not in COLUMNS]
        if unknown:
            raise FileFormatError(
                Text(
                    "%(name)s:1: unknown column(s) %(columns)s in the header; known columns: "
                    "%(known)s",
                    name=self.name,
                    columns=Text.join(", ", map(quoted, unknown)),
                    known=", ".join(COLUMNS),
                )
            )
        fields = [COLUMNS[name][0] for name in names]
        twice = sorted({field for field in fields if fields.count(field) > 1})
        missing = [
            field for field in ("operation", "user", "course", "role") if field not in fields
        ]
        if twice or missing:
            raise FileFormatError(
                Text(
                    _NAMED_TWICE if twice else _LACKS,
                    name=self.name,
                    fields=", ".join(twice or missing),
                )
            )
        by = {COLUMNS[name][0]: COLUMNS[name][1] for name in names if COLUMNS[name][1]}
        return Format(
            header=True,
            user_by=by["user"],
            course_by=by["course"],
            columns=tuple(fields),
            names=tuple(names),
        )

    # --- records ------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Record]:
        if self._first is None:
            return iter(())
        return self._with_header() if self.format.header else self._positional()

    def _with_header(self) -> Iterator[Record]:
        columns = self.format.columns
        rows = csv.reader(
            self._lines, delimiter=_separator(self._first), skipinitialspace=True, strict=False
        )
        while True:
            try:
                values = next(rows)
            except StopIteration:
                return
            except csv.Error as exc:
                line, text, _ = self._take()
                yield Record(line, text, error=unreadable(exc))
                continue
            line, text, clean = self._take()
            if not any(value.strip() for value in values):
                continue
            if not clean:
                yield Record(line, text, error=_undecodable(self.encoding))
            elif len(values) != len(columns):
                yield Record(
                    line,
                    text,
                    error=Text(
                        "expected %(count)d fields (%(names)s), found %(found)d",
                        count=len(columns),
                        names=",".join(self.format.names),
                        found=len(values),
                    ),
                )
            else:
                yield self._record(line, text, dict(zip(columns, values, strict=True)))

    def _positional(self) -> Iterator[Record]:
        pending = [self._first]
        for text in _chain(pending, self._lines):
            line, text, clean = self._take()
            if not text.strip():
                continue
            if not clean:
                yield Record(line, text, error=_undecodable(self.encoding))
                continue
            try:
                values = _split(text, _separator(text))
            except csv.Error as exc:
                yield Record(line, text, error=unreadable(exc))
                continue
            if values and values[0].strip().startswith("'"):  # Moodle's all-or-nothing quotes
                values = [value.strip().strip("'") for value in values]
            if not 4 <= len(values) <= 6:
                yield Record(
                    line,
                    text,
                    error=Text(
                        "expected 4 to 6 fields (operation, role, user idnumber, course idnumber"
                        "[, timestart[, timeend]]), found %(found)d",
                        found=len(values),
                    ),
                )
                continue
            yield self._record(line, text, dict(zip(POSITIONAL, values, strict=False)))

    def _record(self, line: int, text: str, values: dict[str, str]) -> Record:
        record = Record(line, text)
        record.error = self._check(record, values)
        return record

    def _check(self, record: Record, values: dict[str, str]) -> str:
        """Fill ``record`` from ``values``; return why the line is rejected, or ''."""
        op = values["operation"].strip().lower()
        if op not in (ADD, DEL):
            return Text("unknown operation %(op)s; expected add or del", op=quoted(op))
        record.op = op
        try:
            record.timestart = _time(values.get("timestart", ""), "timestart")
            record.timeend = _time(values.get("timeend", ""), "timeend")
        except _BadTime as exc:
            return exc.reason
        if record.timestart and record.timeend and record.timeend < record.timestart:
            return Text(
                "timeend %(end)s is before timestart %(start)s",
                end=iso(record.timeend),
                start=iso(record.timestart),
            )
        alias = values["role"].strip().lower()
        role_id = self.roles.get(alias)
        if role_id is None:
            known = ", ".join(sorted(self.roles)[:12]) or Text("none")
            return Text(
                "unknown role %(role)s (roles files may use: %(known)s)",
                role=quoted(alias),
                known=known,
            )
        record.role_id = role_id
        record.user = values["user"].strip()
        if not record.user:
            return Text("no user %(by)s", by=self.format.user_by)
        record.course = values["course"].strip()
        if not record.course:
            return Text("no course %(by)s", by=self.format.course_by)
        return ""


def _separator(line: str) -> str:
    return "," if "," in line else ";"


def _split(line: str, separator: str) -> list[str]:
    return next(csv.reader([line], delimiter=separator, skipinitialspace=True, strict=False), [])


def _chain(first: list[str], rest: Iterator[str]) -> Iterator[str]:
    yield from first
    yield from rest


def _undecodable(encoding: str) -> Text:
    return Text("not valid %(encoding)s text", encoding=encoding)


_OUT_OF_RANGE = N_(
    "%(field)s: %(value)s is out of range; give a time from 1970-01-01 to 9999-12-31 "
    "(Unix seconds 0 to %(latest)d)"
)
_NOT_A_TIME = N_(
    "%(field)s: %(value)s is not a time; give Unix seconds or ISO 8601 such as 2026-09-01 or "
    "2026-09-01T08:00:00Z"
)


class _BadTime(Exception):
    """A time field the line cannot use; ``reason`` says why, as a :class:`Text`."""

    def __init__(self, reason: Text) -> None:
        self.reason = reason


def _time(value: str, field: str) -> int:
    """Unix seconds of a time field; :class:`_BadTime` (with a translatable reason, the value
    clipped) when it is not a time or lies outside 1970 to 9999."""
    text = value.strip()
    try:
        seconds = parse_time(text, field=field, latest=MAX_TIME)
    except BadTime:
        seconds = -1 if text.lstrip("-").isdigit() else None
    if seconds is None or not 0 <= seconds <= MAX_TIME:
        out_of_range = seconds is not None or _is_iso(text)
        reason = _OUT_OF_RANGE if out_of_range else _NOT_A_TIME
        raise _BadTime(Text(reason, field=field, value=quoted(text[:40]), latest=MAX_TIME))
    return seconds


def _is_iso(text: str) -> bool:
    """Whether ``text`` reads as an ISO 8601 time (one :func:`parse_time` found out of range)."""
    try:
        datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
