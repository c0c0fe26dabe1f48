"""What a run tells people: the error report beside the file, the admins' mail, one-line
summaries."""

from __future__ import annotations

import csv
import os
from itertools import islice
from pathlib import Path

from enrolkit import mail
from enrolkit.models import User
from enrolkit.site import Site
from sqlalchemy import select

from .models import FlatfileReject

#: Errors kept in memory for the command's output and listed in the mail; the report file
#: beside the processed file has them all.
SHOWN_ERRORS = 100
ERRORS_HEADER = ("line", "reason", "original_line")


def write_errors(site: Site, file_id: int, target: Path) -> list[dict]:
    """Stream the file's rejected lines, in line order, to ``target`` (written whole or not at
    all); return the first ``SHOWN_ERRORS`` of them."""
    shown: list[dict] = []
    partial = target.with_name(f".{target.name}.tmp")
    rows = site.session.execute(
        select(FlatfileReject.line, FlatfileReject.reason, FlatfileReject.text)
        .where(FlatfileReject.file_id == file_id)
        .order_by(FlatfileReject.line)
        .execution_options(yield_per=1000)
    )
    with partial.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(ERRORS_HEADER)
        for line, reason, text in rows:
            writer.writerow((line, reason, text))
            if len(shown) < SHOWN_ERRORS:
                shown.append({"line": line, "reason": reason, "text": text})
    os.replace(partial, target)
    return shown


def read_errors(path: Path) -> list[dict]:
    """The first ``SHOWN_ERRORS`` errors of a report written by an earlier run."""
    if not path.is_file():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        rows = csv.reader(handle)
        next(rows, None)
        return [
            {"line": int(line), "reason": reason, "text": text}
            for line, reason, text in islice(rows, SHOWN_ERRORS)
        ]


def summary(name: str, counts: dict[str, int], *, dry_run: bool = False) -> str:
    """``enrol.csv: 4 lines, 3 applied, 1 rejected, 0 scheduled; enrolled 2, ...``"""
    get = counts.get
    would = "would be " if dry_run else ""
    return (
        f"{name}: {get('lines', 0)} line(s), {get('accepted', 0) - get('scheduled', 0)} "
        f"{would}applied, {get('scheduled', 0)} {would}scheduled, {get('rejected', 0)} rejected; "
        f"enrolled {get('enrolled', 0)}, updated {get('updated', 0)}, "
        f"suspended {get('suspended', 0)}, unenrolled {get('unenrolled', 0)}, "
        f"roles added {get('roles_added', 0)}, removed {get('roles_removed', 0)}"
    )


def admin_addresses(site: Site) -> list[tuple[int, str]]:
    return list(
        site.session.execute(
            select(User.id, User.email)
            .where(User.siteadmin.is_(True), User.deleted.is_(False), User.email != "")
            .order_by(User.id)
        )
    )


def mail_admins(site: Site, *, subject: str, body: str, key: str) -> int:
    """Queue ``body`` to every site admin, in the caller's transaction; ``key`` (per file and
    run) keeps a repeated run from queueing it twice. Returns how many were queued."""
    queued = 0
    for user_id, address in admin_addresses(site):
        try:
            queued += mail.queue(
                site, to=address, subject=subject, body=body, key=f"{key}:{user_id}"[:255]
            )
        except mail.MailError:  # an admin with an unusable address: the others still hear
            continue
    return queued


def report_body(
    name: str, folder: Path, counts: dict[str, int], errors: list[dict], errors_file: Path
) -> str:
    lines = [
        f"The enrolment file {name} in {folder} was applied with rejected lines.",
        "",
        summary(name, counts),
        "",
        f"Rejected lines (all of them are in {errors_file}):",
    ]
    lines += [f"  line {e['line']}: {e['reason']}: {e['text']}" for e in errors]
    if counts.get("rejected", 0) > len(errors):
        lines.append(f"  ... and {counts['rejected'] - len(errors)} more")
    return "\n".join(lines) + "\n"
