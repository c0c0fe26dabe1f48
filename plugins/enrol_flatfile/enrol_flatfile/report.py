"""What a run tells people: the error report beside the file, the admins' mail, one-line
summaries.

Rejected lines are quoted at most ``TEXT_CAP`` characters each (their reasons ``REASON_CAP``,
the file's values in them :data:`~enrol_flatfile.reasons.VALUE_CAP`),
and listings show at most ``SHOWN_ERRORS`` of them then "and N more": a report, the JSON or a
mail never carries a whole file, however long its lines.
"""

from __future__ import annotations

import csv
import os
import tempfile
from itertools import islice
from pathlib import Path

from enrolkit import csvfile, mail
from enrolkit.catalogs import gettext_for, reader_language, site_language
from enrolkit.models import User
from enrolkit.site import Site
from enrolkit.texts import Text, translate
from sqlalchemy import select

from .models import FlatfileReject

#: Errors kept in memory for the command's output and listed in the mail; the report file
#: beside the processed file has them all.
SHOWN_ERRORS = 100
#: Characters of a rejected line's text, and of its reason (which may quote a value), kept.
TEXT_CAP, REASON_CAP = 200, 300
ERRORS_HEADER = ("line", "reason", "original_line")


def clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, saying how many were left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"


def more_line(shown: int, total: int) -> str | None:
    """``... and N more`` under a listing cut at ``shown`` of ``total``; None when all shown."""
    return f"... and {total - shown:,} more" if total > shown else None


def write_errors(site: Site, file_id: int, target: Path) -> list[dict]:
    """Stream the file's rejected lines, in line order, to ``target`` (written whole or not at
    all, under a fresh hidden name first, so no link planted in the folder is written through);
    return the first ``SHOWN_ERRORS`` of them, their reasons as :class:`Text` (the mail shows
    each admin their language). The file is one language for all its readers: the site's
    (:func:`~enrolkit.catalogs.site_language`). Cells are neutralised for spreadsheets."""
    gettext = gettext_for(site, site_language(site))
    shown: list[dict] = []
    rows = site.session.execute(
        select(FlatfileReject.line, FlatfileReject.reason, FlatfileReject.text)
        .where(FlatfileReject.file_id == file_id)
        .order_by(FlatfileReject.line)
        .execution_options(yield_per=1000)
    )
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:
        with open(fd, "w", encoding="utf-8", newline="") as handle:
            writer = csvfile.SafeWriter(handle)
            writer.writerow(ERRORS_HEADER)
            for line, reason, text in rows:
                writer.writerow((line, clip(translate(reason, gettext), REASON_CAP), text))
                if len(shown) < SHOWN_ERRORS:
                    shown.append({"line": line, "reason": reason, "text": text})
        os.chmod(partial, 0o644)
        os.replace(partial, target)
    finally:
        Path(partial).unlink(missing_ok=True)
    return shown


def kept_errors(site: Site, file_id: int) -> list[dict]:
    """The first ``SHOWN_ERRORS`` rejected lines of the file as the database keeps them (every
    one while it is applied, the listed ones after), their reasons as :class:`Text`, so a page
    shows them in its reader's language. Empty for a file applied before they were kept: its
    report file then has them (:func:`read_errors`)."""
    return [
        {"line": line, "reason": reason, "text": text}
        for line, reason, text in site.session.execute(
            select(FlatfileReject.line, FlatfileReject.reason, FlatfileReject.text)
            .where(FlatfileReject.file_id == file_id)
            .order_by(FlatfileReject.line)
            .limit(SHOWN_ERRORS)
        )
    ]


def read_errors(path: Path) -> list[dict]:
    """The first ``SHOWN_ERRORS`` errors of a report written by an earlier run, clipped like new
    ones (a report written before the caps may hold fields too long for the csv module: what
    could be read is shown)."""
    if path.is_symlink() or not path.is_file():
        return []
    found: list[dict] = []
    with path.open(encoding="utf-8", newline="", errors="replace") as handle:
        rows = csv.reader(handle)
        try:
            next(rows, None)
            for row in islice(rows, SHOWN_ERRORS):
                if len(row) != len(ERRORS_HEADER) or not row[0].isdigit():
                    continue
                line, reason, text = row
                found.append(
                    {
                        "line": int(line),
                        "reason": clip(csvfile.restore(reason), REASON_CAP),
                        "text": clip(csvfile.restore(text), TEXT_CAP),
                    }
                )
        except csv.Error:
            pass
    return found


#: How a file's run reads (message ids: a page shows them in its reader's language).
SUMMARY = (
    "%(name)s: %(lines)d line(s), %(applied)d applied, %(scheduled)d scheduled, "
    "%(rejected)d rejected; enrolled %(enrolled)d, updated %(updated)d, suspended %(suspended)d, "
    "unenrolled %(unenrolled)d, roles added %(roles_added)d, removed %(roles_removed)d"
)
DRY_RUN_SUMMARY = (
    "%(name)s: %(lines)d line(s), %(applied)d would be applied, %(scheduled)d would be "
    "scheduled, %(rejected)d rejected; enrolled %(enrolled)d, updated %(updated)d, suspended "
    "%(suspended)d, unenrolled %(unenrolled)d, roles added %(roles_added)d, removed "
    "%(roles_removed)d"
)
COUNTED = ("lines", "scheduled", "rejected", "enrolled", "updated", "suspended", "unenrolled",
           "roles_added", "roles_removed")  # fmt: skip


def summary(name: str, counts: dict[str, int], *, dry_run: bool = False) -> Text:
    """``enrol.csv: 4 lines, 3 applied, 1 rejected, 0 scheduled; enrolled 2, ...``"""
    numbers = {key: counts.get(key, 0) for key in COUNTED}
    numbers["applied"] = counts.get("accepted", 0) - numbers["scheduled"]
    return Text(DRY_RUN_SUMMARY if dry_run else SUMMARY, name=name, **numbers)


def admins(site: Site) -> list[User]:
    """The site admins who can be mailed."""
    return list(
        site.session.scalars(
            select(User)
            .where(User.siteadmin.is_(True), User.deleted.is_(False), User.email != "")
            .order_by(User.id)
        )
    )


def mail_admins(site: Site, *, subject: Text, body: Text, key: str) -> int:
    """Queue the mail to every site admin, in the caller's transaction, each in their language
    (their profile's, else the site's: :func:`enrolkit.catalogs.reader_language`); ``key`` (per
    file and run) keeps a repeated run from queueing it twice. Returns how many were queued."""
    queued = 0
    for admin in admins(site):
        gettext = gettext_for(site, reader_language(site, admin))
        try:
            queued += mail.queue(
                site,
                to=admin.email,
                subject=translate(subject, gettext),
                body=translate(body, gettext),
                key=f"{key}:{admin.id}"[:255],
            )
        except mail.MailError:  # an admin with an unusable address: the others still hear
            continue
    return queued


def not_applied_mail(path: Path, why: Text | str) -> tuple[Text, Text]:
    """Subject and body of the admins' mail about a file of which nothing was applied."""
    subject = Text("Flat-file enrolment: %(name)s was not applied", name=path.name)
    body = Text(
        "The enrolment file %(path)s was not applied:\n\n%(why)s\n", path=str(path), why=why
    )
    return subject, body


def report_mail(
    name: str,
    folder: Path,
    counts: dict[str, int],
    errors: list[dict],
    errors_file: Path,
    note: Text | str = "",
) -> tuple[Text, Text]:
    """Subject and body of the admins' mail about an applied file: the counts, what happened to
    the file when it changed meanwhile (``note``), and the first rejected lines (their reasons
    as the report file has them)."""
    if errors:
        rejected = counts.get("rejected", 0)
        what = Text("%(count)d line(s) rejected in %(name)s", count=rejected, name=name)
        applied = Text(
            "The enrolment file %(name)s in %(folder)s was applied with rejected lines.",
            name=name,
            folder=str(folder),
        )
    else:
        what = Text("%(name)s changed after it was read", name=name)
        applied = Text(
            "The enrolment file %(name)s in %(folder)s was applied and changed after it was read.",
            name=name,
            folder=str(folder),
        )
    lines: list = [applied, ""]
    if note:
        lines += [note, ""]
    lines.append(summary(name, counts))
    if errors:
        lines += ["", Text("Rejected lines (all of them are in %(file)s):", file=str(errors_file))]
        lines += [
            Text("  line %(line)d: %(reason)s: %(text)s", line=e["line"], reason=e["reason"],
                 text=e["text"])
            for e in errors
        ]  # fmt: skip
        more = counts.get("rejected", 0) - len(errors)
        if more > 0:
            lines.append(Text("  ... and %(count)s more", count=f"{more:,}"))
    lines.append("")
    return Text("Flat-file enrolment: %(what)s", what=what), Text.join("\n", lines)
