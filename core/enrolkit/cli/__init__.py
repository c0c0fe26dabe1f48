"""The ``enrolkit`` command line: a plain click group. Each command group lives in its own module;
errors print one line and exit non-zero.

A command answers in a fraction of a second only if it imports nothing it does not use: the
command modules import click and :mod:`.output` at the top and what a command needs inside it,
the plugins' modules are light (see ``docs/writing-a-method.md``), and Flask is imported by
``serve`` alone. ``benchmarks/bench_cli.py`` measures it.

Every error reaches a person through :meth:`EnrolkitGroup.invoke`, the one place that turns it
into a line: an :class:`EnrolkitError`'s message, a database problem said in words (never the SQL
statement, see :func:`enrolkit.db.describe`), or, for a bug, its type and message with exit 70.
``ENROLKIT_DEBUG=1`` shows the traceback instead. Output cut short by the reader (``enrolkit log
| head``) ends the command quietly, as Unix tools do. Nothing here imports SQLAlchemy: only a
command that loaded it can raise its errors.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import TYPE_CHECKING

import click

from .. import clock
from ..errors import EnrolkitError

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.exc import SQLAlchemyError


class EnrolkitGroup(click.Group):
    """Turns the errors a user can act on into one line on stderr and a non-zero exit."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except BrokenPipeError:
            quiet_exit_on_broken_pipe()
        except Exception as exc:
            if _show_traceback(exc):
                raise
            fail(*explain(exc, _engine(ctx, exc)))


def _show_traceback(exc: Exception) -> bool:
    """Under ``ENROLKIT_DEBUG``, every error but a plain :class:`EnrolkitError` shows its
    traceback (a database error wrapped in one included)."""
    if not os.environ.get("ENROLKIT_DEBUG"):
        return False
    return not isinstance(exc, EnrolkitError) or _database_error(exc) is not None


def explain(exc: Exception, engine: Engine | None = None) -> tuple[str, int]:
    """The line and exit status for an error: 1 for one the user can act on, 75 (EX_TEMPFAIL)
    for a busy database, 70 (EX_SOFTWARE) for a bug. ``engine`` names the database."""
    found = _database_error(exc)
    if found is not None:
        from .. import db  # loaded already: the error came from SQLAlchemy

        if db.busy(found):
            return f"the database is busy ({db.describe(found)}); try again", 75
        said = db.problem(found, engine)
        if said is not None:  # the database itself is the problem, whatever was being done
            return said, 1
    if isinstance(exc, EnrolkitError):
        return str(exc), 1
    if found is not None:
        return db.describe(found, engine), 1
    text = str(exc).strip().splitlines()
    return (
        f"internal error: {type(exc).__name__}: {text[0] if text else ''} "
        "(this is a bug; rerun with ENROLKIT_DEBUG=1 for the traceback)",
        70,
    )


def _database_error(exc: BaseException) -> SQLAlchemyError | None:
    """The database error behind ``exc``: itself, or one it was raised from or while handling.
    Only a command that loaded SQLAlchemy can raise one, so this never imports it."""
    if "sqlalchemy" not in sys.modules:
        return None
    from sqlalchemy.exc import SQLAlchemyError

    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, SQLAlchemyError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _engine(ctx: click.Context, exc: Exception) -> Engine | None:
    """The site's database engine, to name the database in a message about it (None for any
    other error, or when the runtime cannot be made: the message goes without the place)."""
    from .output import CliState

    state = ctx.find_object(CliState)
    if state is None or _database_error(exc) is None:
        return None
    try:
        return state.runtime(check_schema=False).db
    except (Exception, SystemExit):
        return None


def quiet_exit_on_broken_pipe() -> None:
    """The reader of our output went away (``| head``): stop without a word, as ``cat`` does.
    Python would complain again when it flushes stdout at exit, so stdout now goes nowhere.
    The status is the shell's for a process ended by SIGPIPE (128 + 13)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is no file (a test runner's capture): nothing to do
        pass
    sys.exit(128 + signal.SIGPIPE)


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
        clock.now()  # a bad ENROLKIT_NOW: one line before anything reads the time
        plugins = Plugins()
    except EnrolkitError as exc:  # a broken plugin: one line, even for --help
        fail(str(exc))
    plugins.register_commands(cli=cli)
    try:
        cli.main(prog_name="enrolkit", obj=CliState(plugins))
    except SystemExit:
        try:  # output still buffered when the reader has gone: quiet, as above
            sys.stdout.flush()
        except BrokenPipeError:
            quiet_exit_on_broken_pipe()
        raise
