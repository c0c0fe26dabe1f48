"""The ``enrolkit`` command line (a Flask ``FlaskGroup``: ``run``, ``shell`` and ``routes`` come
with it). Each command group lives in its own module; errors print one line and exit non-zero."""

from __future__ import annotations

import functools
import os
import sys
from typing import TYPE_CHECKING

import click
from flask.cli import FlaskGroup
from sqlalchemy.exc import OperationalError, ProgrammingError

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
    url = app.config["DATABASE_URL"]
    if plugins is not None and url:  # config.py names the database, as create_app honours
        app.extensions["enrolkit"] = Runtime(url, plugins)
    return app


class EnrolkitGroup(FlaskGroup):
    """Turns the errors a user can act on into one line on stderr and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except EnrolkitError as exc:
            fail(str(exc))
        except (OperationalError, ProgrammingError) as exc:
            text = str(exc.orig) if exc.orig else str(exc)
            if "no such table" in text or "does not exist" in text:
                fail("the database has no schema yet; run: enrolkit db upgrade")
            fail(f"database error: {text.splitlines()[0]}")
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except Exception as exc:  # a bug: say so in one line unless debugging
            if os.environ.get("ENROLKIT_DEBUG"):
                raise
            fail(
                f"internal error: {type(exc).__name__}: {exc} "
                "(this is a bug; rerun with ENROLKIT_DEBUG=1 for the traceback)",
                code=70,
            )


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
        plugins = Plugins()
    except EnrolkitError as exc:  # a broken plugin: one line, even for --help
        fail(str(exc))
    plugins.register_commands(cli=cli)
    cli.create_app = functools.partial(_create_app, plugins)
    cli.main(prog_name="enrolkit")
