"""Step 1 of applying a file: read it in chunks, resolve names to ids, stage or reject each line.

Each chunk is one transaction that also moves the journal's ``line`` forward, so a re-run skips
exactly the lines already taken. Users, courses and roles are looked up per chunk with ``IN``
queries, never one query per line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from itertools import islice

from enrolkit import texts
from enrolkit.bulk import insert_rows
from enrolkit.models import Course, User
from enrolkit.site import Site
from sqlalchemy import any_, bindparam, select
from sqlalchemy.dialects.postgresql import ARRAY

from .journal import abandon, add_counts, lock
from .models import APPLYING, READING, FlatfileLine, FlatfileReject
from .reader import SHORTNAME, USERNAME, Format, Reader, Record
from .reasons import missing
from .report import TEXT_CAP, clip

#: Values per ``IN (...)`` list: well under SQLite's parameter limit.
IN_BATCH = 1000
#: Values per ``= ANY(array)`` on PostgreSQL: one parameter, so a chunk's names in a query or two
#: (an ``IN`` list of 1,000 parameters costs PostgreSQL more to parse and plan than to run).
ARRAY_BATCH = 20_000


def stage(
    site: Site,
    file_id: int,
    reader: Reader,
    chunk_size: int,
    advance: Callable[[int], None],
    unchanged: Callable[[], bool] = lambda: True,
) -> None:
    """Stage every line of ``reader`` not yet journaled, then mark the file ready to apply; or,
    when ``unchanged()`` says the file changed while it was read, abandon it (nothing of it was
    applied) so the next run reads it afresh."""
    courses = _CourseCache(site, reader.format)
    done = 0
    for chunk in _chunks(reader, chunk_size):
        with site.atomic():
            journal = lock(site, file_id)
            if journal.status != READING:  # another run finished reading it meanwhile
                return
            fresh = [record for record in chunk if record.line > journal.line]
            if fresh:
                _resolve(site, fresh, reader.format, courses)
                _store(site, file_id, fresh)
                rejected = sum(1 for record in fresh if record.error)
                journal.line = fresh[-1].line
                add_counts(
                    journal, lines=len(fresh), accepted=len(fresh) - rejected, rejected=rejected
                )
        advance(reader.bytes_read - done)
        done = reader.bytes_read
    with site.atomic():
        journal = lock(site, file_id)
        if journal.status == READING:
            if unchanged():
                journal.status = APPLYING
            else:
                abandon(site, [file_id])


def _chunks(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    iterator = iter(records)
    while chunk := list(islice(iterator, size)):
        yield chunk


def _batches(values: list[str], size: int = IN_BATCH) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _resolve(site: Site, records: list[Record], fmt: Format, courses: _CourseCache) -> None:
    """Turn user and course names into ids; reject the lines naming unknown ones."""
    valid = [record for record in records if not record.error]
    users = _users(site, sorted({record.user for record in valid}), fmt.user_by)
    course_ids = courses.get(sorted({record.course for record in valid}))
    user_label = "user" if fmt.user_by == USERNAME else "user idnumber"
    course_label = "course" if fmt.course_by == SHORTNAME else "course idnumber"
    for record in valid:
        found = users.get(record.user, 0)
        if found <= 0:
            record.error = missing(user_label, record.user, found)
            continue
        course = course_ids.get(record.course, 0)
        if course <= 0:
            record.error = missing(course_label, record.course, course)
            continue
        record.user_id, record.course_id = found, course


def _users(site: Site, names: list[str], by: str) -> dict[str, int]:
    """Name -> user id; -n when the name (an idnumber) matches n users."""
    column = User.username if by == USERNAME else User.idnumber
    return _ids(site, select(column, User.id).where(User.deleted.is_(False)), column, names)


def _ids(site: Site, query, column, names: list[str]) -> dict[str, int]:
    found: dict[str, int] = {}
    postgresql = site.session.get_bind().dialect.name == "postgresql"
    for batch in _batches(names, ARRAY_BATCH if postgresql else IN_BATCH):
        if postgresql:
            matching = column == any_(bindparam("names", batch, type_=ARRAY(column.type)))
        else:
            matching = column.in_(batch)
        for name, ident in site.session.execute(query.where(matching)):
            found[name] = min(found[name], -1) - 1 if name in found else ident
    return found


class _CourseCache:
    """Courses found so far in this file: bounded by the site's courses, not by the file (names
    not found are looked up again in each chunk that has them)."""

    def __init__(self, site: Site, fmt: Format) -> None:
        self.site = site
        self.column = Course.shortname if fmt.course_by == SHORTNAME else Course.idnumber
        self.known: dict[str, int] = {}

    def get(self, names: list[str]) -> dict[str, int]:
        missing = [name for name in names if name not in self.known]
        if missing:
            query = select(self.column, Course.id)
            if self.column is Course.idnumber:
                query = query.where(Course.idnumber != "")
            self.known.update(_ids(self.site, query, self.column, missing))
        return self.known


_LINE_COLUMNS = ("file_id", "line", "course_id", "user_id", "role_id", "op", "timestart", "timeend")
_REJECT_COLUMNS = ("file_id", "line", "reason", "text")


def _store(site: Site, file_id: int, records: list[Record]) -> None:
    """The chunk's valid lines to ``flatfile_lines`` and its rejected ones to
    ``flatfile_rejects``, by COPY on PostgreSQL (:func:`enrolkit.bulk.insert_rows`, which writes
    past the ORM: the reason goes in as :class:`~enrolkit.models.base.StoredText` keeps it)."""
    lines = [
        (
            file_id,
            record.line,
            record.course_id,
            record.user_id,
            record.role_id,
            record.op,
            record.timestart,
            record.timeend,
        )  # fmt: skip
        for record in records
        if not record.error
    ]
    rejects = [
        (file_id, record.line, texts.dumps(record.error), clip(record.text, TEXT_CAP))
        for record in records
        if record.error
    ]
    if lines:
        insert_rows(site.session, FlatfileLine.__tablename__, _LINE_COLUMNS, lines)
    if rejects:
        insert_rows(site.session, FlatfileReject.__tablename__, _REJECT_COLUMNS, rejects)
