"""The flat-file journal: which files were read, how far, and the lines waiting to be applied.

A file is applied in two steps, each in transactions that also move the journal forward, so a
crash at any point and a re-run apply every line exactly once:

1. **Staging.** The file is read in chunks; each chunk's valid lines go to ``flatfile_lines``
   (users, courses and roles resolved to ids) and its rejected lines to ``flatfile_rejects``, in
   the transaction that sets ``flatfile_files.line`` to the chunk's last line.
2. **Applying.** Staged lines are applied course by course, one engine plan per course and
   slice; the transaction that applies them deletes them from ``flatfile_lines``.

Grouping by course before applying keeps the number of plans to the number of courses, whatever
the order of the file.
"""

from __future__ import annotations

from enrolkit.models import Base, Timestamp
from enrolkit.models.base import StoredText
from sqlalchemy import JSON, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

#: Journal states, in order: being read, being applied, applied (file not yet renamed), renamed.
READING, APPLYING, DONE, FINISHED = "reading", "applying", "done", "finished"
#: Final states besides ``finished``: every line read was applied but the file had changed since,
#: so it was left in place (``changed``); or nothing was applied because the file changed while
#: it was read, or another file took its name before applying began (``abandoned``).
CHANGED, ABANDONED = "changed", "abandoned"


class FlatfileFile(Base):
    """One file seen in the drop folder, known by name, size, modification time and SHA-256."""

    __tablename__ = "flatfile_files"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Timestamp)
    mtime_ns: Mapped[int] = mapped_column(Timestamp)
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default=READING)
    #: The last line read and committed (staged or rejected).
    line: Mapped[int] = mapped_column(Integer, default=0)
    #: What applying the file did so far (lines, rejected, enrolled, ...).
    counts: Mapped[dict] = mapped_column(JSON, default=dict)
    #: Name the file is renamed to, without ``.done`` (``enrol.csv`` or ``enrol.csv.2``).
    target: Mapped[str] = mapped_column(String(255), default="")
    timestarted: Mapped[int] = mapped_column(Timestamp, default=0)
    timefinished: Mapped[int] = mapped_column(Timestamp, default=0)
    __table_args__ = (UniqueConstraint("name", "size", "mtime_ns", "sha256"),)


class FlatfileLine(Base):
    """A valid line, resolved, waiting to be applied. Keyed (and, on SQLite, stored) in the
    order lines are applied: by file, course, then line."""

    __tablename__ = "flatfile_lines"
    file_id: Mapped[int] = mapped_column(
        ForeignKey("flatfile_files.id", ondelete="CASCADE"), primary_key=True
    )
    course_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer)
    role_id: Mapped[int] = mapped_column(Integer)
    #: ``add`` or ``del``.
    op: Mapped[str] = mapped_column(String(3))
    timestart: Mapped[int] = mapped_column(Timestamp, default=0)
    timeend: Mapped[int] = mapped_column(Timestamp, default=0)
    __table_args__ = {"sqlite_with_rowid": False}


class FlatfileReject(Base):
    """A rejected line: all of them until the file's error report is written, then the first
    ``report.SHOWN_ERRORS`` (the ones its web page lists, in the page's language)."""

    __tablename__ = "flatfile_rejects"
    file_id: Mapped[int] = mapped_column(
        ForeignKey("flatfile_files.id", ondelete="CASCADE"), primary_key=True
    )
    line: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: A :class:`~enrolkit.texts.Text` (message id and parameters), shown in its reader's
    #: language; rows of plain English written before are read as they are.
    reason: Mapped[str] = mapped_column(StoredText)
    text: Mapped[str] = mapped_column(Text)
