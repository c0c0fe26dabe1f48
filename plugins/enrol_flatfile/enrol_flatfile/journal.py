"""The journal row of a file: found by the file's identity, locked by every transaction that
moves it forward, so two runs on one file (cron and the CLI) take turns instead of both applying.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from enrolkit.site import Site
from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from .models import (
    ABANDONED,
    APPLYING,
    CHANGED,
    DONE,
    FINISHED,
    READING,
    FlatfileFile,
    FlatfileLine,
    FlatfileReject,
)

COUNTS = (
    "lines",
    "accepted",
    "rejected",
    "scheduled",
    "enrolled",
    "updated",
    "suspended",
    "unenrolled",
    "roles_added",
    "roles_removed",
)
_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


@dataclass(frozen=True)
class Identity:
    """What makes a file the same file: its name, size, modification time and content."""

    name: str
    size: int
    mtime_ns: int
    sha256: str


def identify(handle: BinaryIO, name: str) -> Identity:
    """Hash the open file (then rewind it): the identity of exactly what will be read."""
    info = os.fstat(handle.fileno())
    digest = hashlib.sha256()
    while block := handle.read(1 << 20):
        digest.update(block)
    handle.seek(0)
    return Identity(name, info.st_size, info.st_mtime_ns, digest.hexdigest())


def lock(site: Site, file_id: int) -> FlatfileFile:
    """The journal row, re-read and locked for the rest of the transaction."""
    return site.session.execute(
        select(FlatfileFile)
        .where(FlatfileFile.id == file_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalar_one()


def add_counts(journal: FlatfileFile, **more: int) -> None:
    current = journal.counts or {}
    journal.counts = {key: current.get(key, 0) + more.get(key, 0) for key in COUNTS}


def open_journal(
    site: Site, identity: Identity, still_there: Callable[[], bool]
) -> tuple[int, list[int]] | None:
    """The journal row of this file, created on first sight, and the rows of earlier files of
    the same name whose lines were read and are being applied; None when another run has just
    applied and renamed this file. A file renamed before and dropped again unchanged starts
    afresh.

    An earlier file of the same name left half-way (a crash, then the file was replaced) is
    abandoned while it was still being read, since none of its lines was applied; once applying
    began, its staged lines are returned to be finished first, so the lines of a file that was
    read are all applied, exactly once, whatever happens to the file afterwards."""
    table = FlatfileFile.__table__
    keys = {
        "name": identity.name,
        "size": identity.size,
        "mtime_ns": identity.mtime_ns,
        "sha256": identity.sha256,
    }
    with site.atomic():
        dialect = site.session.get_bind().dialect.name
        site.session.execute(
            _INSERTS[dialect](table)
            .values(**keys, status=READING, line=0, counts={}, target="", timestarted=site.now())
            .on_conflict_do_nothing()
        )
        journal = site.session.execute(
            select(FlatfileFile)
            .filter_by(**keys)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalar_one()
        if journal.status in (FINISHED, CHANGED, ABANDONED):
            if not still_there():  # renamed by the run that finished it after we opened it
                return None
            journal.status, journal.line, journal.counts, journal.target = READING, 0, {}, ""
            site.session.execute(
                delete(FlatfileReject).where(FlatfileReject.file_id == journal.id)
            )  # the lines its last run listed: this run rejects its own
            journal.timestarted, journal.timefinished = site.now(), 0
        earlier = dict(
            site.session.execute(
                select(FlatfileFile.id, FlatfileFile.status)
                .where(
                    FlatfileFile.name == identity.name,
                    FlatfileFile.id != journal.id,
                    FlatfileFile.status.in_((READING, APPLYING, DONE)),
                )
                .order_by(FlatfileFile.id)
            ).all()
        )
        abandon(site, [file_id for file_id, status in earlier.items() if status == READING])
        return journal.id, [file_id for file_id, status in earlier.items() if status != READING]


def abandon(site: Site, file_ids: list[int]) -> None:
    """Drop what was staged for these files, none of it applied, and mark them abandoned."""
    if not file_ids:
        return
    site.session.execute(delete(FlatfileLine).where(FlatfileLine.file_id.in_(file_ids)))
    site.session.execute(delete(FlatfileReject).where(FlatfileReject.file_id.in_(file_ids)))
    site.session.execute(
        update(FlatfileFile)
        .where(FlatfileFile.id.in_(file_ids))
        .values(status=ABANDONED, timefinished=site.now())
        .execution_options(synchronize_session=False)
    )
