"""Site-level commands: the database, the demo site, the server and plugins."""

from __future__ import annotations

from pathlib import Path

import click

from . import cli, fail
from .output import emit, json_option, open_site, plugins, runtime


@cli.group()
def db():
    """The database schema."""


@db.command("upgrade")
def db_upgrade():
    """Create or upgrade the schema (Alembic), then the preset roles."""
    made = runtime(check_schema=False)
    made.upgrade()
    click.echo(f"database ready: {made.db.url.render_as_string(hide_password=True)}")


@cli.group()
def plugin():
    """Installed plugins."""


@plugin.command("list")
@json_option
def plugin_list(as_json):
    """Every plugin: name, distribution, version and the hooks it implements (each plugin's
    methods, tasks and condition types are loaded, so a broken one is reported here)."""
    loaded = plugins()
    loaded.load_all()
    rows = [
        {
            "name": p.name,
            "distribution": p.distribution,
            "version": p.version,
            "hooks": list(p.hooks),
        }
        for p in loaded.list()
    ]
    emit(rows, as_json)


@cli.command("demo")
def demo_command():
    """Load the demo site (idempotent) and print the logins of its admin, a French-speaking
    teacher and a French-speaking student."""
    from .. import demo

    with open_site() as site:
        created = demo.load(site)
    made = ", ".join(f"{v} {k}" for k, v in created.items() if v) or "nothing new"
    click.echo(f"demo site loaded ({made})")
    click.echo(f"admin login: {demo.ADMIN_USERNAME} / {demo.ADMIN_PASSWORD}")
    click.echo(f"teacher login (French): {demo.TEACHER_USERNAME} / {demo.ADMIN_PASSWORD}")
    click.echo(f"student login (French): {demo.STUDENT_USERNAME} / {demo.ADMIN_PASSWORD}")


@cli.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option(
    "--threads",
    default=4,
    show_default=True,
    type=int,
    help="Requests served at once; 4 suits a 2-core node (docs/deploying.md).",
)
def serve_command(host, port, threads):
    """Serve the web admin on a production WSGI server (waitress).

    Checks first what every page needs, so a broken home fails here in one line instead of
    answering 500 to every request: the database (reachable, enrolkit's, with its schema) and
    the session key (``SECRET_KEY`` in config.py, or ``$ENROLKIT_HOME/secret_key``, made on
    first start, which needs a writable home).
    """
    from waitress import serve

    from .. import db as database
    from ..web import create_app, stored_secret_key

    engine = runtime(check_schema=False).db
    state = database.schema_state(engine)
    if state == "foreign":
        fail(database.damaged_message(database.where(engine.url)))
    if state == "empty":
        fail("the database has no schema yet; run: enrolkit db upgrade")
    app = create_app(runtime=runtime())
    if not app.config.get("SECRET_KEY"):
        home = Path(app.instance_path)
        try:
            app.config["SECRET_KEY"] = stored_secret_key(home)
        except OSError as exc:
            fail(
                f"cannot keep the session key in {home / 'secret_key'}: "
                f"{exc.strerror}; make $ENROLKIT_HOME writable by this user, or set SECRET_KEY "
                "in config.py"
            )
    click.echo(f"enrolkit serving on http://{host}:{port}/")
    serve(app, host=host, port=port, threads=threads)
