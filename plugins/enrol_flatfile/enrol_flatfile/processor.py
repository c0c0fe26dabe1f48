"""Applying the drop folder: which files, in what order, and each file's way from first sight to
its ``.done`` name.

A file goes: read and staged (:mod:`.staging`), applied course by course (:mod:`.applying`),
its error report written and the admins mailed, marked done, renamed ``<name>.done``, marked
finished. The journal row says where it stands, so a run killed at any point is finished by the
next one, every line applied once: a file already applied but not yet renamed is only renamed.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from enrolkit import log
from enrolkit.errors import EnrolkitError, Refused
from enrolkit.site import Site
from sqlalchemy import delete, func, select

from .applying import Applier
from .journal import identify, lock, open_journal
from .method import COMPONENT, NAME, Settings, load_settings
from .models import APPLYING, DONE, FINISHED, READING, FlatfileLine, FlatfileReject
from .reader import FileFormatError, Reader
from .report import (
    SHOWN_ERRORS,
    mail_admins,
    read_errors,
    report_body,
    summary,
    write_errors,
)
from .staging import stage

DONE_SUFFIX, ERRORS_SUFFIX = ".done", ".errors.csv"

#: ``progress(label, total, file_size)`` -> a context manager giving ``advance(n)``.
Progress = Callable[[str, int, int], AbstractContextManager[Callable[[int], None]]]


def no_progress(label: str, total: int, size: int) -> AbstractContextManager[Callable[[int], None]]:
    return nullcontext(lambda n: None)


@dataclass
class FileResult:
    """What applying one file did (or, in a dry run, would do)."""

    name: str
    path: Path
    counts: dict[str, int]
    dry_run: bool = False
    renamed_to: Path | None = None
    errors_file: Path | None = None
    #: The first rejected lines (``report.SHOWN_ERRORS``); ``errors_file`` has them all.
    errors: list[dict] = field(default_factory=list)
    #: Dry run: what would change, per course.
    changes: list[dict] = field(default_factory=list)

    def summary(self) -> str:
        return summary(self.name, self.counts, dry_run=self.dry_run)

    def as_json(self) -> dict:
        return {
            "file": self.name,
            "path": str(self.path),
            "dry_run": self.dry_run,
            "counts": self.counts,
            "renamed_to": str(self.renamed_to) if self.renamed_to else None,
            "errors_file": str(self.errors_file) if self.errors_file else None,
            "errors": self.errors,
            **({"changes": self.changes} if self.dry_run else {}),
        }


def drop_folder_files(folder: Path) -> list[Path]:
    """The files to apply, in name order: regular files directly in ``folder``, not symlinks,
    not hidden (a file still being uploaded can be written under a ``.`` name and renamed),
    not processed (``.done``) and not error reports."""
    if not folder.is_dir():
        return []
    found = []
    for entry in os.scandir(folder):
        name = entry.name
        if name.startswith(".") or name.endswith((DONE_SUFFIX, ERRORS_SUFFIX)):
            continue
        if entry.is_file(follow_symlinks=False):
            found.append(Path(entry.path))
    return sorted(found, key=lambda path: path.name)


def process(
    site: Site,
    *,
    path: Path | None = None,
    dry_run: bool = False,
    progress: Progress = no_progress,
) -> Iterator[FileResult]:
    """Apply the drop folder's files in name order (or just ``path``), yielding each result as
    it is done. A file that cannot be read at all stops the run: later files may depend on it."""
    site.plugins.method(NAME)
    if not dry_run and not site.method_enabled(NAME):
        raise Refused(
            "flat-file enrolment is disabled on this site; enable it: enrolkit method enable flatfile"
        )
    settings = load_settings(site)
    if path is not None:
        if path.name.endswith((DONE_SUFFIX, ERRORS_SUFFIX)):
            raise Refused(f"{path.name} is a processed file or an error report; it is not applied")
        files, follow = [path], True
    else:
        files, follow = drop_folder_files(settings.folder), False
    for file in files:
        try:
            result = _process_file(site, file, settings, dry_run, progress, follow)
        except _Gone:
            if path is not None:
                raise EnrolkitError(f"{file}: no such file") from None
            continue  # applied and renamed by another run since the folder was listed
        if result is not None:
            yield result


def _process_file(
    site: Site, path: Path, settings: Settings, dry_run: bool, progress: Progress, follow: bool
) -> FileResult | None:
    with _open(path, follow) as handle:
        identity = identify(handle, path.name)
        try:
            reader = Reader(handle, path.name, settings.encoding, settings.roles)
        except FileFormatError as exc:
            if not dry_run:
                _mail_failure(site, settings, path, identity.sha256, str(exc))
            raise
        if dry_run:
            return _DryRun.run(site, path, settings, reader, identity)
        file_id = open_journal(site, identity, lambda: _same_file(handle, path))
        if file_id is None:
            return None
        run = _FileRun(site, file_id, path, identity.size, settings, progress)
        if run.status() == READING:
            with progress(f"reading {path.name}", identity.size, identity.size) as advance:
                stage(site, file_id, reader, settings.chunk_size, advance)
    if run.status() == APPLYING:
        run.apply()
    return run.finish()


class _FileRun:
    """The steps after reading, for one journaled file."""

    def __init__(
        self,
        site: Site,
        file_id: int,
        path: Path,
        size: int,
        settings: Settings,
        progress: Progress,
    ) -> None:
        self.site, self.file_id, self.path, self.size = site, file_id, path, size
        self.settings, self.progress = settings, progress

    def status(self) -> str:
        with self.site.atomic():
            return lock(self.site, self.file_id).status

    def staged(self) -> int:
        return self.site.session.scalar(
            select(func.count()).where(FlatfileLine.file_id == self.file_id)
        )

    def apply(self, *, dry_run: bool = False) -> Applier:
        applier = Applier(
            self.site,
            self.file_id,
            self.path.name,
            self.settings.chunk_size,
            self.settings.removal,
            dry_run=dry_run,
        )
        label = f"applying {self.path.name}"
        with self.progress(label, self.staged(), self.size) as advance:
            applier.run(advance)
        return applier

    def finish(self) -> FileResult:
        site, path = self.site, self.path
        with site.atomic():
            journal = lock(site, self.file_id)
            if not journal.target:
                journal.target = _free_target(path)
            target, status, counts = journal.target, journal.status, dict(journal.counts)
            sha256 = journal.sha256
        errors_file = path.parent / f"{target}{ERRORS_SUFFIX}"
        if status == APPLYING:
            errors = write_errors(site, self.file_id, errors_file) if counts.get("rejected") else []
            with site.atomic():
                journal = lock(site, self.file_id)
                if journal.status == APPLYING:
                    self._record(counts, errors, errors_file, sha256)
                    journal.status = DONE
        else:
            errors = read_errors(errors_file)
        renamed = path.parent / f"{target}{DONE_SUFFIX}"
        try:
            os.rename(path, renamed)
        except FileNotFoundError:  # another run renamed it first
            pass
        with site.atomic():
            journal = lock(site, self.file_id)
            journal.status, journal.timefinished = FINISHED, site.now()
        return FileResult(
            name=path.name,
            path=path,
            counts=counts,
            renamed_to=renamed,
            errors_file=errors_file if counts.get("rejected") else None,
            errors=errors,
        )

    def _record(self, counts: dict, errors: list[dict], errors_file: Path, sha256: str) -> None:
        """In the transaction that marks the file done: the log entry, the admins' mail."""
        name = self.path.name
        log.record(self.site, "flatfile_processed", COMPONENT, reason=summary(name, counts))
        if errors and self.settings.mail_admins:
            mail_admins(
                self.site,
                subject=f"Flat-file enrolment: {counts['rejected']} line(s) rejected in {name}",
                body=report_body(name, self.path.parent, counts, errors, errors_file),
                key=f"flatfile:report:{sha256[:32]}:{self.file_id}",
            )
        self.site.session.execute(
            delete(FlatfileReject).where(FlatfileReject.file_id == self.file_id)
        )


class _DryRun(Exception):
    """Carries a dry run's result out of the transaction it rolls back."""

    def __init__(self, result: FileResult) -> None:
        self.result = result

    @classmethod
    def run(
        cls, site: Site, path: Path, settings: Settings, reader: Reader, identity
    ) -> FileResult:
        """Everything a real run does up to the writes, in one transaction rolled back."""
        try:
            with site.atomic():
                file_id = open_journal(site, identity, lambda: True)
                run = _FileRun(site, file_id, path, identity.size, settings, no_progress)
                if run.status() == READING:
                    stage(site, file_id, reader, settings.chunk_size, lambda n: None)
                applier = run.apply(dry_run=True) if run.status() == APPLYING else None
                journal = lock(site, file_id)
                errors = [
                    {"line": line, "reason": reason, "text": text}
                    for line, reason, text in site.session.execute(
                        select(FlatfileReject.line, FlatfileReject.reason, FlatfileReject.text)
                        .where(FlatfileReject.file_id == file_id)
                        .order_by(FlatfileReject.line)
                        .limit(SHOWN_ERRORS)
                    )
                ]
                raise cls(
                    FileResult(
                        name=path.name,
                        path=path,
                        counts=dict(journal.counts),
                        dry_run=True,
                        errors=errors,
                        changes=applier.changes if applier else [],
                    )
                )
        except cls as done:
            return done.result


class _Gone(Exception):
    """The file is not there (any more)."""


def _open(path: Path, follow: bool) -> BinaryIO:
    """Open a regular file for reading; from the drop folder, never through a symlink."""
    flags = os.O_RDONLY | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise _Gone() from None
    except OSError as exc:
        raise EnrolkitError(f"{path}: cannot open ({exc.strerror})") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise EnrolkitError(f"{path}: not a regular file")
    return os.fdopen(fd, "rb")


def _same_file(handle: BinaryIO, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``handle``."""
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(handle.fileno())
    return (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino)


def _free_target(path: Path) -> str:
    """``enrol.csv``, or ``enrol.csv.2`` (...) when an earlier ``enrol.csv.done`` or error report
    is in the way: a processed file is never overwritten."""
    base, n = path.name, 1
    while (path.parent / f"{base}{DONE_SUFFIX}").exists() or (
        path.parent / f"{base}{ERRORS_SUFFIX}"
    ).exists():
        n += 1
        base = f"{path.name}.{n}"
    return base


def _mail_failure(site: Site, settings: Settings, path: Path, sha256: str, error: str) -> None:
    if not settings.mail_admins:
        return
    with site.atomic():
        mail_admins(
            site,
            subject=f"Flat-file enrolment: {path.name} was not applied",
            body=f"The enrolment file {path} was not applied:\n\n{error}\n\n"
            "Fix the file; it is applied on the next run.\n",
            key=f"flatfile:failed:{sha256[:32]}",
        )
