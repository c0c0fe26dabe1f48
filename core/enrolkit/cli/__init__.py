"""The ``enrolkit`` command line: a plain click group. Each command group lives in its own module;
errors print one line and exit non-zero.

A command answers in a fraction of a second only if it imports nothing it does not use: the
command modules import click and :mod:`.output` at the top and what a command needs inside it,
the plugins' modules are light (see ``docs/writing-a-method.md``), and Flask is imported by
``serve`` alone. ``benchmarks/bench_cli.py`` measures it.
"""

from __future__ import annotations

import os
import sys

import click

from ..errors import EnrolkitError


class EnrolkitGroup(click.Group):
    """Turns the errors a user can act on into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EnrolkitError as exc:
            fail(str(exc))
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as exc:
            database = _database_error(exc)
            if database:
                fail(database)
            if os.environ.get("ENROLKIT_DEBUG"):  # a bug: say so in one line unless debugging
                raise
            fail(
                f"internal error: {type(exc).__name__}: {exc} "
                "(this is a bug; rerun with ENROLKIT_DEBUG=1 for the traceback)",
                code=70,
            )


def _database_error(exc: Exception) -> str | None:
    """The one line for a database error, or None. Only a command that loaded SQLAlchemy can
    raise one, so this never imports it."""
    if "sqlalchemy" not in sys.modules:
        return None
    from sqlalchemy.exc import OperationalError, ProgrammingError

    if not isinstance(exc, OperationalError | ProgrammingError):
        return None
    text = str(exc.orig) if exc.orig else str(exc)
    if "no such table" in text or "does not exist" in text:
        return "the database has no schema yet; run: enrolkit db upgrade"
    return f"database error: {text.splitlines()[0]}"


def fail(message: str, code: int = 1):
    click.echo(f"enrolkit: error: {message}", err=True)
    sys.exit(code)


cli = EnrolkitGroup(
    name="enrolkit",
    help="enrolkit: enrolment automation. Data home: $ENROLKIT_HOME (default ./instance).",
)


def main() -> None:
    from ..plugins import Plugins
    from . import commands  # noqa: F401  (registers the command groups)
    from .output import CliState

    # Plugins load once, before parsing, so their commands are there (``--help`` included); the
    # commands' runtime, made on first use, gets the same plugins.
    try:
        plugins = Plugins()
    except EnrolkitError as exc:  # a broken plugin: one line, even for --help
        fail(str(exc))
    plugins.register_commands(cli=cli)
    cli.main(prog_name="enrolkit", obj=CliState(plugins))
