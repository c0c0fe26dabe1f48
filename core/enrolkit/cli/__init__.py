"""The ``enrolkit`` command line (a Flask ``FlaskGroup``: ``run``, ``shell`` and ``routes`` come
with it). Each command group lives in its own module; errors print one line and exit non-zero.

Every error reaches a person through :meth:`EnrolkitGroup.invoke`, the one place that turns it
into a line: an :class:`EnrolkitError`'s message, a database problem said in words (never the SQL
statement, see :func:`enrolkit.db.describe`), or, for a bug, its type and message with exit 70.
``ENROLKIT_DEBUG=1`` shows the traceback instead. Output cut short by the reader (``enrolkit log
| head``) ends the command quietly, as Unix tools do.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
from typing import TYPE_CHECKING

import click
from flask.cli import FlaskGroup, ScriptInfo
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from .. import clock, db
from ..errors import EnrolkitError

if TYPE_CHECKING:
    from ..plugins import Plugins


def _create_app(plugins: Plugins | None = None):
    from ..runtime import Runtime
    from ..web import create_app

    try:
        app = create_app(runtime=Runtime(plugins=plugins) if plugins is not None else None)
    except EnrolkitError as exc:  # a broken plugin: one line, even for --help
        fail(str(exc))
    except OSError as exc:  # the SQLite file's folder cannot be made (a read-only home)
        fail(
            f"cannot create {exc.filename}: {exc.strerror}; check ENROLKIT_HOME and its permissions"
        )
    url = app.config["DATABASE_URL"]
    if plugins is not None and url:  # config.py names the database, as create_app honours
        app.extensions["enrolkit"] = Runtime(url, plugins)
    return app


class EnrolkitGroup(FlaskGroup):
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
            fail(*explain(exc, _engine(ctx)))


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
    """The database error behind ``exc``: itself, or one it was raised from or while handling."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, SQLAlchemyError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _engine(ctx: click.Context) -> Engine | None:
    """The site's database engine, to name the database in messages (None without an app)."""
    info = ctx.find_object(ScriptInfo)
    try:
        return info.load_app().extensions["enrolkit"].db if info is not None else None
    except (Exception, SystemExit):  # the app cannot be made: the message goes without the place
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
    create_app=_create_app,
    add_version_option=False,
    load_dotenv=False,
    set_debug_flag=False,
    help="enrolkit: enrolment automation. Data home: $ENROLKIT_HOME (default ./instance).",
)


def main() -> None:
    from ..plugins import Plugins
    from . import commands  # noqa: F401  (registers the command groups)

    # Plugins load once, before parsing, so their commands are there (``--help`` included); the
    # app, made lazily by FlaskGroup, gets the same plugins.
    try:
        clock.now()  # a bad ENROLKIT_NOW: one line before anything reads the time
        plugins = Plugins()
    except EnrolkitError as exc:  # a broken plugin: one line, even for --help
        fail(str(exc))
    plugins.register_commands(cli=cli)
    cli.create_app = functools.partial(_create_app, plugins)
    try:
        cli.main(prog_name="enrolkit")
    except SystemExit:
        try:  # output still buffered when the reader has gone: quiet, as above
            sys.stdout.flush()
        except BrokenPipeError:
            quiet_exit_on_broken_pipe()
        raise
