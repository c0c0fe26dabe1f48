"""``enrolkit flatfile process [FILE] [--dry-run] [--json]``, added to the ``enrolkit`` command
through the ``register_commands`` hook."""

from __future__ import annotations

import json
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import click
from enrolkit.cli.output import open_site

if TYPE_CHECKING:
    from .processor import FileResult

#: Files at least this big show a progress bar when the command runs on a terminal.
PROGRESS_MIN_BYTES = 256 * 1024


@click.group("flatfile")
def flatfile():
    """Flat-file enrolment: apply the enrolment files of the drop folder."""


@flatfile.command("process")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Print what would change; write nothing.")
@click.option("--copy", is_flag=True, help="Copy FILE into the drop folder first, then apply it.")
@click.option("--json", "as_json", is_flag=True, help="Print the counts and errors as JSON.")
def process_command(file, dry_run, copy, as_json):
    """Apply the drop folder's files in name order, or only FILE, which must be in the drop
    folder (--copy copies a file from elsewhere in first).

    Each applied file is renamed <name>.done; rejected lines go to <name>.errors.csv beside it
    and, when the site says so, to the admins by mail. A run that was interrupted is finished by
    the next one, each line applied once. A file that changes while it is applied is left in
    place, and the output says what was applied. Exits with status 2 when lines were rejected
    (as ``enrolkit user import`` does), after applying the good ones.
    """
    from .method import load_settings
    from .processor import copy_in, no_progress, process

    if copy and file is None:
        raise click.UsageError("--copy needs the FILE to copy into the drop folder")
    if copy and dry_run:
        raise click.UsageError(
            "--copy leaves the file in the drop folder to be applied; a dry run reads only "
            "files already there"
        )
    progress = no_progress if as_json else _terminal_progress
    results: list[dict] = []
    with open_site() as site:
        if copy:
            file = copy_in(load_settings(site).folder, file)
            if not as_json:
                click.echo(f"copied to {file}")
        try:
            for result in process(site, path=file, dry_run=dry_run, progress=progress):
                results.append(result.as_json())
                if not as_json:
                    _echo(result)
        finally:
            if as_json:
                click.echo(json.dumps(results, indent=2))
        if not results and not as_json:
            click.echo(f"no file to apply in {load_settings(site).folder}")
    if any(result["counts"].get("rejected") for result in results):
        sys.exit(2)


def _echo(result: FileResult) -> None:
    from .report import more_line

    renamed = f" -> {result.renamed_to.name}" if result.renamed_to else ""
    click.echo(result.summary() + renamed)
    if result.note:
        click.echo(f"  {result.note}")
    for change in result.changes:
        click.echo(f"  {change['course']}: {_describe(change)}")
    for error in result.errors:
        click.echo(f"  line {error['line']}: {error['reason']}")
    more = more_line(len(result.errors), result.counts.get("rejected", 0))
    if more:
        click.echo(f"  {more}")
    if result.errors_file is not None:
        click.echo(f"  rejected lines: {result.errors_file}")


def _describe(change: dict) -> str:
    """``enrolled 2 (ann, bob); suspended 1 (cy)`` for one course of a dry run."""
    parts = []
    for kind in ("enrolled", "updated", "suspended", "unenrolled"):
        if change[kind]:
            names = change["users"][kind]
            more = ", ..." if change[kind] > len(names) else ""
            parts.append(f"{kind} {change[kind]} ({', '.join(names)}{more})")
    if change["scheduled"]:
        parts.append(f"scheduled {change['scheduled']}")
    return "; ".join(parts)


@contextmanager
def _terminal_progress(label: str, total: int, size: int):
    """A progress bar on stderr for a big file, when stderr is a terminal; else nothing."""
    stream = sys.stderr
    if size < PROGRESS_MIN_BYTES or not stream.isatty():
        yield lambda n: None
        return
    with click.progressbar(length=max(total, 1), label=label, file=stream) as bar:
        yield bar.update
