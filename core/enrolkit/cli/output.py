"""Shared CLI plumbing: opening a site, printing listings as a table or JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import click
from flask import current_app

from ..runtime import Runtime
from ..site import Site

json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")


def runtime() -> Runtime:
    return current_app.extensions["enrolkit"]


@contextmanager
def open_site(origin: str = "cli") -> Iterator[Site]:
    with runtime().site(origin=origin) as site:
        yield site


def emit(rows: Sequence[dict], as_json: bool, columns: Sequence[str] | None = None) -> None:
    """Print ``rows``: a JSON array with ``--json``, else an aligned table (lists joined)."""
    if as_json:
        click.echo(json.dumps(list(rows), indent=2, default=str))
        return
    if not rows:
        click.echo("(none)")
        return
    columns = list(columns or rows[0].keys())

    def cell(value) -> str:
        if isinstance(value, list | tuple):
            return ",".join(map(str, value))
        if value is None:
            return ""
        return str(value)

    table = [[cell(row.get(col)) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in table)) for i, col in enumerate(columns)]
    click.echo("  ".join(col.ljust(w) for col, w in zip(columns, widths, strict=True)).rstrip())
    for r in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
