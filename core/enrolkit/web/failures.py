"""What a request answers when the server, not the caller, failed: a request id on every
response, "busy, try again" (503 with Retry-After) when the database stayed busy, and never a
word of the database's own error text.

Every response carries ``X-Request-Id``: the caller's own (a load balancer's), when it is a
short token, or a new one. A database error is written to the server log under that id, with its
traceback; the page or the JSON body names only the id, which is what an operator greps for.
"""

from __future__ import annotations

import re
import uuid

from flask import Flask, current_app, g, got_request_exception, render_template, request
from flask_babel import gettext as _
from sqlalchemy.exc import SQLAlchemyError

from .. import db
from ..locks import RETRY_AFTER, transient

HEADER = "X-Request-Id"
#: A caller's request id we take over: letters, digits and ``-_.:``, at most 100 characters.
_ACCEPTED = re.compile(r"[A-Za-z0-9._:-]{1,100}")


def init_app(app: Flask) -> None:
    @app.before_request
    def _request_id():
        g.request_id = request_id()

    @app.after_request
    def _send_request_id(response):
        response.headers.setdefault(HEADER, request_id())
        return response

    app.register_error_handler(SQLAlchemyError, database_failure)
    got_request_exception.connect(_name_the_request, app)


def _name_the_request(sender: Flask, exception: BaseException, **_extra) -> None:
    """Flask logs a bug's traceback (and answers 500, with the request id) just after this:
    the line before it says which request it was."""
    sender.logger.error("request %s failed: %s %s", request_id(), request.method, request.path)


def request_id() -> str:
    """This request's id: the one the caller sent, if acceptable, or a new one."""
    if "request_id" not in g:
        sent = request.headers.get(HEADER, "").strip()
        g.request_id = sent if _ACCEPTED.fullmatch(sent) else uuid.uuid4().hex
    return g.request_id


def busy(error: BaseException) -> bool:
    """A failure that trying again later may cure: a deadlock or serialisation failure the
    engine's retries did not get past, a lock wait that timed out, a database that cannot be
    reached right now."""
    if transient(error):
        return True
    if isinstance(error, SQLAlchemyError):
        if db.busy(error):
            return True
        said = db.problem(error) or ""
        return said.startswith("cannot connect")
    return False


def database_failure(error: SQLAlchemyError):
    """Log the database's error under the request id; answer 503 (busy) or 500, in JSON under
    the API, as a page elsewhere."""
    rid = request_id()
    current_app.logger.error("request %s failed on the database", rid, exc_info=error)
    _roll_back()
    code = 503 if busy(error) else 500
    headers = {"Retry-After": str(RETRY_AFTER)} if code == 503 else {}
    if _api_request():
        from ..api.common import error_body

        if code == 503:
            message = "the database is busy; try again in a moment"
        else:
            message = "the server failed to handle the request; it is logged under its request id"
        body, code, _headers = error_body(code, message)
        return body, code, headers
    if code == 503:
        message = _("The site is busy. Try again in a moment.")
    else:
        message = _("Something went wrong on the server. It has been logged.")
    page = render_template("error.html", status=code, message=message, request_id=rid)
    return page, code, headers


def _api_request() -> bool:
    from ..api.common import PREFIX

    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


def _roll_back() -> None:
    """End the failed transaction of the request's sessions, so the error page can render."""
    for name in ("api_site", "site"):
        site = g.get(name)
        if site is not None:
            site.session.rollback()
