"""The Flask application factory: the web admin, course pages and dashboard.

Security lives here once for every blueprint: CSRF on every form (Flask-WTF), session cookies
HttpOnly, SameSite=Lax and Secure outside debug and tests, a secret key that is never a fixed
default, and the permission decorators of :mod:`.guards` on every view (the route walk test fails
for a view without one).
"""

from __future__ import annotations

import os
import secrets
import tempfile
import threading
from pathlib import Path
from typing import Any

from flask import Flask
from flask.sessions import SecureCookieSessionInterface
from flask_wtf.csrf import CSRFProtect
from jinja2 import ChoiceLoader, FileSystemLoader

from .. import db
from ..catalogs import LANGUAGES
from ..errors import EnrolkitError
from ..runtime import Runtime

csrf = CSRFProtect()


def create_app(config: dict[str, Any] | None = None, runtime: Runtime | None = None) -> Flask:
    """Build the web app. ``config`` overrides settings (tests pass ``TESTING``).

    Settings come from ``$ENROLKIT_HOME/config.py`` then ``config``. Without a ``SECRET_KEY``
    a random one is made once and kept in ``$ENROLKIT_HOME/secret_key`` (mode 0600), or, under
    ``TESTING``, kept in memory. Several web nodes must share one key: set it in each node's
    ``config.py``.
    """
    app = Flask(__name__, instance_path=str(db.home()), instance_relative_config=True)
    app.config.from_mapping(
        DATABASE_URL=None,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=None,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        BABEL_DEFAULT_LOCALE=LANGUAGES[0],
        #: Failed logins allowed per username and address within the window (seconds).
        LOGIN_MAX_FAILURES=5,
        LOGIN_FAILURE_WINDOW=15 * 60,
        #: Template previews (each renders user-written code) allowed per user and window.
        PREVIEW_LIMIT=20,
        PREVIEW_WINDOW=60,
        PAGE_SIZE=50,
    )
    app.config.from_mapping(db.instance_config())
    if config:
        app.config.from_mapping(config)
    if app.config["SESSION_COOKIE_SECURE"] is None:
        app.config["SESSION_COOKIE_SECURE"] = not (app.debug or app.testing)
    if not app.config.get("SECRET_KEY") and app.testing:
        app.config["SECRET_KEY"] = secrets.token_hex(32)
    app.extensions["enrolkit"] = runtime or Runtime(app.config["DATABASE_URL"])
    runtime_of(app).plugins.load_all()  # a plugin's mistake stops the app at start

    home_templates = Path(app.instance_path) / "templates"
    app.jinja_loader = ChoiceLoader([FileSystemLoader(str(home_templates)), app.jinja_loader])

    csrf.init_app(app)
    _secret_key_on_first_request(app)

    from . import (  # noqa: F401
        admin,
        auth,
        course,
        course_people,
        failures,
        health,
        i18n,
        people,
        pickers,
        views,
    )

    i18n.init_app(app)
    failures.init_app(app)
    health.init_app(app)
    auth.init_app(app)
    views.init_app(app)
    for blueprint in (auth.bp, people.bp, course.bp, admin.bp, pickers.bp):
        app.register_blueprint(blueprint)
    from . import pages

    pages.mount(app, runtime_of(app).plugins.blueprints())
    from ..api import app as api_app

    api_app.init_app(app)
    from .. import scim

    scim.mount(app)
    return app


def runtime_of(app: Flask) -> Runtime:
    return app.extensions["enrolkit"]


def _secret_key_on_first_request(app: Flask) -> None:
    """Read or make the key file when the first session is opened, not when the app is built:
    every CLI command builds the app, and none of them should write into the data home for it."""
    if not app.config.get("SECRET_KEY"):
        app.session_interface = _KeyFileSessions()


class _KeyFileSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the key loaded from the data home on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def get_signing_serializer(self, app: Flask):
        if not app.config.get("SECRET_KEY"):
            with self._lock:
                if not app.config.get("SECRET_KEY"):
                    app.config["SECRET_KEY"] = stored_secret_key(Path(app.instance_path))
        return super().get_signing_serializer(app)


def stored_secret_key(home: Path) -> str:
    """The key in ``home/secret_key``, made on first use. The file appears whole (written aside,
    then linked into place), so two processes starting together end up with the same key."""
    path = home / "secret_key"
    db.make_home(home)
    if not path.exists():
        fd, temporary = tempfile.mkstemp(dir=home, prefix=".secret_key.")
        try:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(32) + "\n")
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            os.unlink(temporary)
    key = path.read_text().strip()
    if not key:
        raise EnrolkitError(f"{path} is empty; delete it to make a new key")
    return key
