"""The flask-smorest ``Api`` on the web app: the blueprints of :mod:`enrolkit.api` under
``/api/v1`` and the OpenAPI document. Only the web app imports it, so the CLI never pays for
Flask."""

from __future__ import annotations

import marshmallow as ma
from flask import Flask, request
from flask_smorest import Api
from flask_smorest.error_handler import ErrorSchema
from werkzeug.exceptions import HTTPException

from .common import PREFIX, http_error

TITLE = "enrolkit"
VERSION = "v1"


class Error(ErrorSchema):
    """Every error answer: flask-smorest's fields and the request id."""

    request_id = ma.fields.String(
        metadata={
            "description": "The request's id, as in the X-Request-Id header: the server's log "
            "has the details of an error under it."
        }
    )


class EnrolkitApi(Api):
    """flask-smorest's Api whose JSON error answers stay under ``/api/``: the web pages keep
    their own HTML error pages."""

    ERROR_SCHEMA = Error

    def _register_error_handlers(self) -> None:
        app = self._app
        previous = app.error_handler_spec[None][None].get(HTTPException)

        def handle(error: HTTPException):
            if request.path == PREFIX or request.path.startswith(PREFIX + "/"):
                return http_error(error)
            return previous(error) if previous is not None else error

        app.register_error_handler(HTTPException, handle)

    def _register_pagination_header(self) -> None:
        """X-Pagination carries JSON text: flask-smorest documents it as an object, which a
        client reading the document would expect in the header's "simple" style."""
        self.spec.components.header(
            "PAGINATION",
            {
                "description": "Pagination metadata as JSON text: total, total_pages, "
                "first_page, last_page, page, previous_page, next_page.",
                "schema": {"type": "string"},
            },
            lazy=True,
        )


def blueprints() -> list:
    from . import catalog, enrolling, feed, flatfile, oversight, people, webhooks

    return [
        people.users,
        catalog.categories,
        catalog.courses,
        people.cohort_bp,
        people.role_bp,
        people.badge_bp,
        enrolling.methods,
        enrolling.instances,
        enrolling.enrolments,
        catalog.events,
        flatfile.flatfile,
        oversight.task_bp,
        oversight.log_bp,
        oversight.plans,
        webhooks.webhook_bp,
        feed.changes_bp,
    ]


def init_app(app: Flask) -> EnrolkitApi:
    """Register the API on the app (after the web's blueprints). CSRF does not apply: the API
    takes no cookies, only bearer tokens."""
    app.config.setdefault("API_TITLE", TITLE)
    app.config.setdefault("API_VERSION", VERSION)
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", PREFIX)
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault(
        "API_SPEC_OPTIONS",
        {
            "info": {
                "description": (
                    "The enrolkit REST API. Send `Authorization: Bearer <token>`; tokens come "
                    "from `enrolkit token create NAME [--scope read|write]`. A token acts as a "
                    "site admin: `read` tokens may only GET, `write` tokens may change anything. "
                    "Lists are paginated (`page`, `page_size`; totals in the X-Pagination "
                    "header). Errors are JSON with `code`, `message` and per-field `errors`."
                )
            },
            "security": [{"bearerAuth": []}],
        },
    )
    api = EnrolkitApi(app)
    api.spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    csrf = app.extensions.get("csrf")
    for bp in blueprints():
        api.register_blueprint(bp)
        if csrf is not None:
            csrf.exempt(bp)
    return api
