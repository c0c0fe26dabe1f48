"""Applying the drop folder: which files, in what order, and each file's way from first sight to
its ``.done`` name.

A file goes: read and staged (:mod:`.staging`), applied course by course (:mod:`.applying`),
its error report written and the admins mailed, marked done, renamed ``<name>.done``, marked
finished. The journal row says where it stands, so a run killed at any point is finished by the
next one, every line applied once: a file already applied but not yet renamed is only renamed.

The folder is confined (:func:`.method.resolve_folder`) and only files directly in it are
read, opened without following links; nothing outside it is renamed or written.

A file that changes under a run: changed while it is read (its bytes no longer match the hash
taken when it was opened), nothing of it is applied and it stays in place for the next run;
changed once its lines were read, every line read is applied, exactly once, and the file now
under that name is left in place (not renamed) to be applied as a new file. Both are said in
the run's output and the admins' mail.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from enrolkit import log
from enrolkit.errors import EnrolkitError, Refused, Where, message
from enrolkit.site import Site
from enrolkit.texts import Text
from sqlalchemy import delete, func, select

from .applying import Applier
from .journal import Identity, identify, lock, open_journal
from .method import COMPONENT, NAME, Settings, load_settings
from .models import (
    ABANDONED,
    APPLYING,
    CHANGED,
    DONE,
    FINISHED,
    READING,
    FlatfileLine,
    FlatfileReject,
)
from .reader import FileFormatError, Reader
from .report import (
    kept_errors,
    mail_admins,
    not_applied_mail,
    read_errors,
    report_mail,
    summary,
    write_errors,
)
from .staging import stage

DONE_SUFFIX, ERRORS_SUFFIX = ".done", ".errors.csv"

#: What became of a file: applied and renamed ``.done``; applied as read but changed since, so
#: left in place; not applied (it changed while being read, or another file took its name);
#: only looked at (a dry run).
APPLIED, APPLIED_CHANGED, NOT_APPLIED, DRY_RUN = (
    "applied",
    "applied_changed",
    "not_applied",
    "dry_run",
)

#: ``progress(label, total, file_size)`` -> a context manager giving ``advance(n)``.
Progress = Callable[[str, int, int], AbstractContextManager[Callable[[int], None]]]
#: Where the file stands now against what was opened: "same", "changed" or "gone".
FileState = Callable[[], str]


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
    #: ``APPLIED``, ``APPLIED_CHANGED`` or ``NOT_APPLIED``, and what that means for the file.
    outcome: str = APPLIED
    note: str = ""

    def summary(self) -> str:
        return summary(self.name, self.counts, dry_run=self.dry_run)

    def more_errors(self) -> int:
        """Rejected lines not listed in ``errors``."""
        return max(self.counts.get("rejected", 0) - len(self.errors), 0)

    def as_json(self) -> dict:
        return {
            "file": self.name,
            "path": str(self.path),
            "dry_run": self.dry_run,
            "outcome": self.outcome,
            "note": self.note,
            "counts": self.counts,
            "renamed_to": str(self.renamed_to) if self.renamed_to else None,
            "errors_file": str(self.errors_file) if self.errors_file else None,
            "errors": self.errors,
            "errors_not_shown": self.more_errors(),
            **({"changes": self.changes} if self.dry_run else {}),
        }


def changed_note(name: str, lines: int) -> Text:
    """What happened to a file that changed after its lines were read."""
    return Text(
        "%(name)s changed after it was read: all %(lines)s line(s) read were applied, once; the "
        "file now under that name was left in place, not renamed, and is applied as a new file",
        name=name,
        lines=f"{lines:,}",
    )


def unread_note(name: str) -> Text:
    """What happened to a file that changed while it was read."""
    return Text(
        "%(name)s changed while it was being read: nothing of it was applied; it was left in "
        "place and is applied by the next run (write files under a name starting with '.' and "
        "rename them when complete)",
        name=name,
    )


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


def in_folder(folder: Path, path: Path) -> Path:
    """``path`` named as a file directly in the drop folder ``folder`` (its own name not
    resolved, so a link there is refused when opened). Refused, saying how to put it there,
    for a file anywhere else."""
    absolute = Path(os.path.abspath(path))
    if absolute.parent.resolve() != folder:
        raise Refused(
            f"{path} is not in the drop folder {folder}; only files there are applied: move it "
            f"there, or add --copy to copy it in first"
        )
    if absolute.name.endswith((DONE_SUFFIX, ERRORS_SUFFIX)):
        raise Refused(f"{absolute.name} is a processed file or an error report; it is not applied")
    return folder / absolute.name


def free_name(folder: Path, name: str) -> Path:
    """``name`` in ``folder``, or ``name.2`` ... when a waiting or processed file has it."""
    candidate, n = name, 1
    while any(os.path.lexists(folder / f"{candidate}{suffix}") for suffix in ("", DONE_SUFFIX)):
        n += 1
        candidate = f"{name}.{n}"
    return folder / candidate


def receive(folder: Path, name: str, write: Callable[[BinaryIO], object]) -> Path:
    """Put a file in the drop folder: ``write`` fills it under a hidden name (which processing
    skips), then it is renamed to ``name`` (or ``name.2``, ...), so a run never sees half a file.
    Raises ``OSError`` when the folder cannot be written."""
    folder.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=folder, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
        target = free_name(folder, name)
        os.replace(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)
    return target


def copy_in(folder: Path, source: Path) -> Path:
    """``enrolkit flatfile process --copy FILE``: a copy of the regular file ``source`` in the
    drop folder, under its name (or a free variant)."""
    try:
        handle = source.open("rb")
    except OSError as exc:
        raise EnrolkitError(f"{source}: cannot open ({exc.strerror})") from None
    with handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise EnrolkitError(f"{source}: not a regular file; only files can be copied in")
        try:
            return receive(folder, source.name, lambda out: shutil.copyfileobj(handle, out))
        except OSError as exc:
            raise Refused(f"cannot write to the drop folder {folder}: {exc.strerror}") from None


def process(
    site: Site,
    *,
    path: Path | None = None,
    dry_run: bool = False,
    progress: Progress = no_progress,
) -> Iterator[FileResult]:
    """Apply the drop folder's files in name order (or just ``path``, which must be directly in
    it), yielding each result as it is done. A file that cannot be read at all stops the run:
    later files may depend on it."""
    site.plugins.method(NAME)
    if not dry_run and not site.method_enabled(NAME):
        raise Refused(
            Text("flat-file enrolment is disabled on this site; enable it"),
            cli="enrolkit method enable flatfile",
            web=Where(Text("Enrolment methods"), "admin.methods"),
        )
    settings = load_settings(site)
    if path is not None:
        files = [in_folder(settings.folder, path)]
    else:
        files = drop_folder_files(settings.folder)
    for file in files:
        try:
            yield from _process_file(site, file, settings, dry_run, progress)
        except _Gone:
            if path is not None:
                raise EnrolkitError(f"{file}: no such file") from None
            continue  # applied and renamed by another run since the folder was listed


def _process_file(
    site: Site, path: Path, settings: Settings, dry_run: bool, progress: Progress
) -> Iterator[FileResult]:
    with _open(path) as handle:
        identity = identify(handle, path.name)
        opened = os.fstat(handle.fileno())
        try:
            reader = Reader(handle, path.name, settings.encoding, settings.roles)
        except FileFormatError as exc:
            if not dry_run:
                _mail_failure(site, settings, path, identity.sha256, message(exc))
            raise
        if dry_run:
            yield _DryRun.run(site, path, settings, reader, identity)
            return
        journal = open_journal(site, identity, lambda: _same_file(handle, path))
        if journal is None:
            return
        file_id, earlier = journal
        for earlier_id in earlier:  # read before this file took the name: finish them first
            yield _FileRun(site, earlier_id, path, 0, settings, progress).complete(
                lambda: "changed" if os.path.lexists(path) else "gone"
            )
        run = _FileRun(site, file_id, path, identity.size, settings, progress)
        if run.status() == READING:
            with progress(f"reading {path.name}", identity.size, identity.size) as advance:
                stage(
                    site,
                    file_id,
                    reader,
                    settings.chunk_size,
                    advance,
                    lambda: _read_as_opened(handle, reader, identity),
                )
    yield run.complete(lambda: _state(path, opened))


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

    def complete(self, state: FileState) -> FileResult:
        """Apply what is staged, then report and rename; ``state()`` tells whether the path
        still names the file that was read (only then is it renamed)."""
        if self.status() == APPLYING:
            self.apply()
        return self.finish(state)

    def finish(self, state: FileState) -> FileResult:
        site, path = self.site, self.path
        with site.atomic():
            journal = lock(site, self.file_id)
            status, counts, sha256 = journal.status, dict(journal.counts), journal.sha256
            if status in (APPLYING, DONE) and not journal.target:
                journal.target = _free_target(path)
            target = journal.target
        if status == ABANDONED:  # changed while read, or replaced before applying began
            return self._not_applied(sha256)
        now = state()
        note = changed_note(path.name, counts.get("lines", 0)) if now == "changed" else ""
        errors_file = path.parent / f"{target}{ERRORS_SUFFIX}"
        if status == APPLYING:
            errors = write_errors(site, self.file_id, errors_file) if counts.get("rejected") else []
            with site.atomic():
                journal = lock(site, self.file_id)
                if journal.status == APPLYING:
                    self._record(counts, errors, errors_file, sha256, note)
                    journal.status = DONE
        else:
            errors = read_errors(errors_file)
        renamed = None
        if now == "same":
            renamed = path.parent / f"{target}{DONE_SUFFIX}"
            try:
                os.rename(path, renamed)
            except FileNotFoundError:  # another run renamed it first
                pass
        with site.atomic():
            journal = lock(site, self.file_id)
            if journal.status == DONE:
                journal.status = CHANGED if note else FINISHED
                journal.timefinished = site.now()
            if journal.status == CHANGED:
                note = note or changed_note(path.name, counts.get("lines", 0))
        return FileResult(
            name=path.name,
            path=path,
            counts=counts,
            renamed_to=renamed,
            errors_file=errors_file if counts.get("rejected") else None,
            errors=errors,
            outcome=APPLIED_CHANGED if note else APPLIED,
            note=note,
        )

    def _not_applied(self, sha256: str) -> FileResult:
        """Nothing of the file was applied: it stays where it is, for the next run."""
        note = unread_note(self.path.name)
        if self.settings.mail_admins:
            with self.site.atomic():
                subject, body = not_applied_mail(self.path, note)
                key = f"flatfile:unread:{sha256[:32]}:{self.file_id}"
                mail_admins(self.site, subject=subject, body=body, key=key)
        return FileResult(
            name=self.path.name, path=self.path, counts={}, outcome=NOT_APPLIED, note=note
        )

    def _record(
        self, counts: dict, errors: list[dict], errors_file: Path, sha256: str, note: str
    ) -> None:
        """In the transaction that marks the file done: the log entry, the admins' mail."""
        name = self.path.name
        log.record(
            self.site,
            "flatfile_processed",
            COMPONENT,
            reason=summary(name, counts) + (f"; {note}" if note else ""),
        )
        if (errors or note) and self.settings.mail_admins:
            subject, body = report_mail(name, self.path.parent, counts, errors, errors_file, note)
            key = f"flatfile:report:{sha256[:32]}:{self.file_id}"
            mail_admins(self.site, subject=subject, body=body, key=key)
        # The rejected lines a page lists stay, so it shows their reasons in its reader's
        # language (the report file has them in the site's); the others go.
        gone = delete(FlatfileReject).where(FlatfileReject.file_id == self.file_id)
        if errors:
            gone = gone.where(FlatfileReject.line > errors[-1]["line"])
        self.site.session.execute(gone)


class _DryRun(Exception):
    """Carries a dry run's result out of the transaction it rolls back."""

    def __init__(self, result: FileResult) -> None:
        self.result = result

    @classmethod
    def run(
        cls, site: Site, path: Path, settings: Settings, reader: Reader, identity: Identity
    ) -> FileResult:
        """Everything a real run does up to the writes, in one transaction rolled back."""
        try:
            with site.atomic():
                file_id, _earlier = open_journal(site, identity, lambda: True)
                run = _FileRun(site, file_id, path, identity.size, settings, no_progress)
                if run.status() == READING:
                    stage(site, file_id, reader, settings.chunk_size, lambda n: None)
                applier = run.apply(dry_run=True) if run.status() == APPLYING else None
                journal = lock(site, file_id)
                errors = kept_errors(site, file_id)
                raise cls(
                    FileResult(
                        name=path.name,
                        path=path,
                        counts=dict(journal.counts),
                        dry_run=True,
                        outcome=DRY_RUN,
                        errors=errors,
                        changes=applier.changes if applier else [],
                    )
                )
        except cls as done:
            return done.result


class _Gone(Exception):
    """The file is not there (any more)."""


def _open(path: Path) -> BinaryIO:
    """Open a regular file of the drop folder for reading, never through a link (``O_NOFOLLOW``)
    and never blocking on a pipe or device (``O_NONBLOCK``, then a regular-file check)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        raise _Gone() from None
    except OSError as exc:
        if path.is_symlink():
            raise Refused(
                f"{path} is a symbolic link; only regular files directly in the drop folder are "
                "applied: put the file itself there"
            ) from None
        raise EnrolkitError(f"{path}: cannot open ({exc.strerror})") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise Refused(f"{path}: not a regular file; only regular files are applied")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def _same_file(handle: BinaryIO, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``handle``."""
    try:
        now = os.lstat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(handle.fileno())
    return (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino)


def _state(path: Path, opened: os.stat_result) -> str:
    """ "same" while ``path`` names the file opened, unchanged (same inode, size and time);
    "gone" when nothing has the name (another run renamed it); "changed" otherwise."""
    try:
        now = os.lstat(path)
    except FileNotFoundError:
        return "gone"
    keys = ("st_dev", "st_ino", "st_size", "st_mtime_ns")
    same = all(getattr(now, key) == getattr(opened, key) for key in keys)
    return "same" if same else "changed"


def _read_as_opened(handle: BinaryIO, reader: Reader, identity: Identity) -> bool:
    """Whether the bytes just read are those hashed when the file was opened: a file written
    in place while it was read is not applied half old, half new."""
    now = os.fstat(handle.fileno())
    return (
        reader.sha256() == identity.sha256
        and now.st_size == identity.size
        and now.st_mtime_ns == identity.mtime_ns
    )


def _free_target(path: Path) -> str:
    """``enrol.csv``, or ``enrol.csv.2`` (...) when an earlier ``enrol.csv.done`` or error report
    is in the way (a link counts): a processed file is never overwritten."""
    base, n = path.name, 1
    while os.path.lexists(path.parent / f"{base}{DONE_SUFFIX}") or os.path.lexists(
        path.parent / f"{base}{ERRORS_SUFFIX}"
    ):
        n += 1
        base = f"{path.name}.{n}"
    return base


def _mail_failure(
    site: Site, settings: Settings, path: Path, sha256: str, error: Text | str
) -> None:
    if not settings.mail_admins:
        return
    with site.atomic():
        why = Text("%(error)s\n\nFix the file; it is applied on the next run.", error=error)
        subject, body = not_applied_mail(path, why)
        mail_admins(site, subject=subject, body=body, key=f"flatfile:failed:{sha256[:32]}")
