"""Shared CLI plumbing: the site a command opens, printing listings as a table or JSON.

A command reaches the site through :func:`open_site` (or :func:`runtime`), which works in any
click command run under ``enrolkit``, a plugin's included: no Flask application context is
involved.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from ..plugins import Plugins
    from ..runtime import Runtime
    from ..site import Site

#: What a table shows for an open date or a time that never came.
NEVER = "—"

json_option = click.option("--json", "as_json", is_flag=True, help="Print a JSON array.")


class CliState:
    """What the commands of one ``enrolkit`` run share (click's ``obj``): the plugins loaded at
    start-up, and the runtime, made on first use with them and checked against the schema."""

    def __init__(self, plugins: Plugins | None = None, runtime: Runtime | None = None) -> None:
        self._plugins = plugins
        self._runtime = runtime
        #: A runtime given by the caller (the tests' ``cli`` fixture) is not checked.
        self._schema_checked = runtime is not None

    @property
    def plugins(self) -> Plugins:
        if self._plugins is None:
            if self._runtime is not None:
                self._plugins = self._runtime.plugins
            else:
                from ..plugins import Plugins

                self._plugins = Plugins()
        return self._plugins

    def runtime(self, *, check_schema: bool = True) -> Runtime:
        if self._runtime is None:
            from ..runtime import Runtime

            self._runtime = Runtime(plugins=self.plugins)
        if check_schema and not self._schema_checked:
            from .. import schema

            schema.check(
                self._runtime.db,
                [schema.CORE_VERSIONS, *self._runtime.plugins.migration_folders()],
            )
            self._schema_checked = True
        return self._runtime


def _state() -> CliState:
    context = click.get_current_context()
    state = context.find_object(CliState)
    if state is None:  # a command invoked outside ``enrolkit`` (e.g. by a plugin's own test)
        state = context.find_root().ensure_object(CliState)
    return state


def plugins() -> Plugins:
    """The run's plugins, without opening the database."""
    return _state().plugins


def runtime(*, check_schema: bool = True) -> Runtime:
    """The run's runtime. ``check_schema=False`` is for ``enrolkit db upgrade``, which makes the
    schema the others check."""
    return _state().runtime(check_schema=check_schema)


@contextmanager
def open_site(origin: str = "cli") -> Iterator[Site]:
    with runtime().site(origin=origin) as site:
        yield site


def instance_names(site: Site, ids: Iterable[int | None]) -> dict[int, str]:
    """What a table calls each instance: its name as its method displays it ("Cohort sync
    (Promo 2026)"), or ``deleted (id N)`` for one that is gone (the log outlives instances)."""
    from sqlalchemy import select

    from ..models import EnrolInstance

    wanted = sorted({i for i in ids if i})
    names = {i: f"deleted (id {i})" for i in wanted}
    for start in range(0, len(wanted), 10_000):
        chunk = wanted[start : start + 10_000]
        for inst in site.session.scalars(select(EnrolInstance).where(EnrolInstance.id.in_(chunk))):
            method = site.plugins.methods.get(inst.method)
            names[inst.id] = method.display_name(inst) if method else (inst.name or inst.method)
    return names


def when(seconds: int | None) -> str:
    """A time as a person reads it in a table: ``YYYY-MM-DD HH:MM`` (UTC), ``—`` for 0 or none
    (Moodle's "open" start or end, a task that never ran). ``--json`` keeps Unix seconds."""
    if not seconds:
        return NEVER
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%d %H:%M")


def cell(value: Any) -> str:
    """A value as a table shows it: lists joined with commas, settings as ``key=value``, yes/no
    for flags; never a Python repr."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(cell(item) for item in value)
    if isinstance(value, dict):
        return " ".join(f"{key}={cell(item)}" for key, item in value.items())
    return str(value)


def emit(
    rows: Sequence[dict],
    as_json: bool,
    columns: Sequence[str] | None = None,
    *,
    times: Sequence[str] = (),
) -> None:
    """Print ``rows``: a JSON array with ``--json`` (times in Unix seconds), else an aligned
    table of ``columns`` (default: every key) where the ``times`` columns read as dates."""
    if as_json:
        click.echo(json.dumps(list(rows), indent=2, default=str))
        return
    if not rows:
        click.echo("(none)")
        return
    columns = list(columns or rows[0].keys())
    table = [
        [when(row.get(col)) if col in times else cell(row.get(col)) for col in columns]
        for row in rows
    ]
    widths = [max(len(col), *(len(r[i]) for r in table)) for i, col in enumerate(columns)]
    click.echo("  ".join(col.ljust(w) for col, w in zip(columns, widths, strict=True)).rstrip())
    for r in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
