"""The ``enrolkit`` command line (a Flask ``FlaskGroup``: ``run``, ``shell`` and ``routes`` come
with it). Each command group lives in its own module; errors print one line and exit non-zero."""

from __future__ import annotations

import os
import sys

import click
from flask.cli import FlaskGroup
from sqlalchemy.exc import OperationalError, ProgrammingError

from ..errors import EnrolkitError


def _create_app():
    from ..web import create_app

    try:
        return create_app()
    except EnrolkitError as exc:  # a broken plugin: one line, even for --help
        fail(str(exc))


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
    from . import commands  # noqa: F401  (registers the command groups)

    cli.main(prog_name="enrolkit")
