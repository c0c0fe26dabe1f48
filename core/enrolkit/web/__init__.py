"""The Flask application factory."""

from __future__ import annotations

from typing import Any

from flask import Flask

from ..runtime import Runtime


def create_app(config: dict[str, Any] | None = None, runtime: Runtime | None = None) -> Flask:
    """Build the web app. ``config`` overrides settings (tests pass ``DATABASE_URL``)."""
    from .. import db

    app = Flask(__name__, instance_path=str(db.home()), instance_relative_config=True)
    app.config.from_mapping(SECRET_KEY="dev", DATABASE_URL=None)
    app.config.from_pyfile("config.py", silent=True)
    if config:
        app.config.from_mapping(config)
    app.extensions["enrolkit"] = runtime or Runtime(app.config["DATABASE_URL"])

    from . import pages

    app.register_blueprint(pages.bp)
    return app


def runtime_of(app: Flask) -> Runtime:
    return app.extensions["enrolkit"]
