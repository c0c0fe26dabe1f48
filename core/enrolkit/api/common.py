"""What every API resource shares: the blueprint (bearer-token check, the request's site, JSON
errors), pagination over SQL selections, and the fields the schemas have in common.

Every resource is a :class:`ApiBlueprint` made by :func:`blueprint`, so no route can be added
without the token check: a request without a valid token gets 401, a read-scope token gets 403 on
anything but GET. A token acts as a site admin (see :mod:`.tokens`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from functools import cached_property
from http import HTTPStatus
from typing import Any

from flask import current_app, g, request
from flask_smorest import Blueprint, Page
from sqlalchemy import Select, func, select
from sqlalchemy.exc import DataError, IntegrityError
from webargs.flaskparser import FlaskParser, abort, is_json_request
from werkzeug.exceptions import HTTPException

from .. import jsontext
from ..catalog import ImportRefused
from ..confirmation import TooManyAttempts
from ..errors import EnrolkitError, NotFound, Refused, SettingsError, message
from ..site import Site
from . import tokens

PREFIX = "/api/v1"
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: The URL converter of a numeric id: ids the databases can hold (larger ones are not found).
ID = "int(min=1, max=2147483647)"


class BodyParser(FlaskParser):
    """Webargs' parser, with the core's JSON depth limit on request bodies: a body nested
    100,000 deep gets a 400 naming the limit, not a ``RecursionError``."""

    def _raw_load_json(self, req):
        if is_json_request(req):
            try:
                jsontext.check_depth(req.get_data(cache=True))
            except jsontext.TooDeep as exc:
                abort(400, exc=exc, message=str(exc), messages={"json": [str(exc)]})
        return super()._raw_load_json(req)


class ApiBlueprint(Blueprint):
    ARGUMENTS_PARSER = BodyParser()
    DEFAULT_PAGINATION_PARAMETERS = {"page": 1, "page_size": 50, "max_page_size": 1000}

    def reads(self, *codes: int) -> Callable:
        """Document a read operation's error answers (401 always)."""
        return self._errors((401, *codes))

    def writes(self, *codes: int) -> Callable:
        """Document a write operation's error answers (401, 403 and 503, the database staying
        busy, always)."""
        return self._errors((401, 403, 503, *codes))

    def _errors(self, codes: Iterable[int]) -> Callable:
        def decorate(view: Callable) -> Callable:
            for code in sorted(set(codes), reverse=True):
                view = self.alt_response(code, response=HTTPStatus(code).name)(view)
            return view

        return decorate


def blueprint(name: str, description: str) -> ApiBlueprint:
    """A resource's blueprint under ``/api/v1``, guarded by the token check, with JSON errors."""
    bp = ApiBlueprint(name, __name__, url_prefix=PREFIX, description=description)
    bp.before_request(authenticate)
    bp.teardown_request(close_site)
    bp.register_error_handler(HTTPException, http_error)
    bp.register_error_handler(EnrolkitError, enrolkit_error)
    bp.register_error_handler(DataError, database_error)
    bp.register_error_handler(IntegrityError, database_error)
    return bp


# --- the request's site and token ------------------------------------------------------------


def site() -> Site:
    """The site of this request (origin ``api``, actor: the token's name)."""
    if "api_site" not in g:
        stack = ExitStack()
        g.api_site_stack = stack
        g.api_site = stack.enter_context(current_app.extensions["enrolkit"].site(origin="api"))
    return g.api_site


def close_site(_exc: BaseException | None = None) -> None:
    stack = g.pop("api_site_stack", None)
    g.pop("api_site", None)
    if stack is not None:
        stack.close()


def authenticate():
    """Bearer token in, or a 401/403 JSON answer out before the view runs."""
    scheme, _, raw = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        return unauthorized("send 'Authorization: Bearer <token>'; enrolkit token create NAME")
    token = tokens.authenticate(site(), raw.strip())
    if token is None:
        return unauthorized("the token is unknown or revoked")
    if token.scope == tokens.SCIM:
        return error_body(403, f"token {token.name!r} has the scim scope: it serves /scim/v2 only")
    if request.method not in READ_METHODS and token.scope != tokens.WRITE:
        return error_body(
            403, f"token {token.name!r} has the read scope; this request needs the write scope"
        )
    site().actor = token.name
    return None


def unauthorized(message: str):
    body, code, _ = error_body(401, message)
    return body, code, {"WWW-Authenticate": 'Bearer realm="enrolkit"'}


# --- errors: {"code", "status", "message", "errors"} -----------------------------------------


def error_body(code: int, message: str, errors: dict | None = None):
    """The JSON of an error answer; ``request_id`` names the request in the server's log."""
    from ..web.failures import request_id

    body: dict[str, Any] = {"code": code, "status": HTTPStatus(code).phrase, "message": message}
    if errors:
        body["errors"] = _text_keys(errors)
    body["request_id"] = request_id()
    return body, code, {}


def _text_keys(value: Any) -> Any:
    """Field names as text: a multipart part may come without a name (None), which JSON cannot
    sort among the others."""
    if isinstance(value, dict):
        return {str(key): _text_keys(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_text_keys(item) for item in value]
    return value


class FieldError(EnrolkitError):
    """Bad input in one field of the request: answered 422 with that field's message. A dotted
    ``field`` names an item of a list (``usernames.1``)."""

    def __init__(self, field: str, message: str, location: str = "json") -> None:
        self.field, self.location = field, location
        super().__init__(f"{field}: {message}")
        self.message = message


def http_error(error: HTTPException):
    data = getattr(error, "data", None) or {}
    errors = data.get("errors") or data.get("messages")
    message = data.get("message") or error.description or HTTPStatus(error.code).phrase
    if errors and error.code == 422:
        message = "the request has invalid fields; see errors"
    body, code, headers = error_body(error.code, message, errors)
    return body, code, {**headers, **(data.get("headers") or {})}


def enrolkit_error(error: EnrolkitError):
    """The services' errors a caller can act on: unknown -> 404, refused -> 409, bad -> 422."""
    if "api_site" in g:
        g.api_site.session.rollback()
    if isinstance(error, FieldError):
        messages: dict | list = [error.message]
        for part in reversed(error.field.split(".")):  # "usernames.1" -> {"usernames": {"1": ..}}
            messages = {part: messages}
        return error_body(422, str(message(error)), {error.location: messages})
    if isinstance(error, SettingsError):
        return error_body(422, str(error), {"json": {"settings": error.messages}})
    if isinstance(error, ImportRefused):  # a strict import with bad rows applies nothing
        rows = [{"line": row.line, "message": row.message} for row in error.errors]
        return error_body(422, str(error), {"rows": rows})
    if isinstance(error, NotFound):
        return error_body(404, str(message(error)))
    if isinstance(error, TooManyAttempts):
        body, code, headers = error_body(429, str(message(error)))
        return body, code, {**headers, "Retry-After": str(error.retry_after)}
    if isinstance(error, Refused):
        return error_body(409, str(message(error)))
    return error_body(422, str(message(error)))


def database_error(error: DataError | IntegrityError):
    """A value the database refuses (a NUL in a name on PostgreSQL) or a duplicate that raced
    past the checks: the caller's input, not a server failure. The database's own words go to
    the server log under the request id, never to the caller."""
    from ..web.failures import request_id

    current_app.logger.warning(
        "request %s refused by the database: %s",
        request_id(),
        str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__,
    )
    if "api_site" in g:
        g.api_site.session.rollback()
    if isinstance(error, IntegrityError):
        return error_body(
            409, "conflicting change: another change to the same data came first; read it again"
        )
    return error_body(422, "the database cannot store a value of this request")


# --- pagination -------------------------------------------------------------------------------


@dataclass
class Query:
    """A selection to page through with LIMIT/OFFSET; each row goes through ``shape``, or the
    whole page through ``shape_page`` when the rows need something read for all of them at once
    (their category paths: one statement for the page, not one per row)."""

    stmt: Select
    shape: Callable[[Any], Any] = lambda row: row
    scalars: bool = True
    shape_page: Callable[[list], list] | None = None


class SqlPage(Page):
    """flask-smorest pager for a :class:`Query`: a COUNT, then one page of rows."""

    @cached_property
    def item_count(self) -> int:
        query: Query = self.collection
        counted = select(func.count()).select_from(query.stmt.order_by(None).subquery())
        return site().session.scalar(counted)

    @property
    def items(self) -> list:
        query: Query = self.collection
        params = self.page_params
        if params.first_item >= self.item_count:
            return []
        page = query.stmt.limit(params.page_size).offset(params.first_item)
        result = site().session.scalars(page) if query.scalars else site().session.execute(page)
        if query.shape_page is not None:
            return query.shape_page(list(result))
        return [query.shape(row) for row in result]


# --- fields -----------------------------------------------------------------------------------


def cli_value(value: Any) -> str:
    """A JSON value as the string the CLI's ``KEY=VALUE`` would carry, so settings sent to the
    API are validated exactly as the CLI's: text as is, true/false, numbers, JSON for the rest."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if value is None:
        return ""
    return json.dumps(value)


def containing(text: str) -> str:
    """A LIKE pattern (escape character ``\\``) matching ``text`` anywhere, wildcards literal."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def resolve(field: str, find: Callable[[], Any]) -> Any:
    """Look up something the request body names; an unknown one is a field error (422), not a
    missing resource (404, kept for the URL's own path)."""
    try:
        return find()
    except NotFound as exc:
        raise FieldError(field, str(exc)) from None
