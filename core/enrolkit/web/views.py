"""What every page shares: error pages, security headers, form helpers and the page size."""

from __future__ import annotations

from flask import Flask, abort, current_app, render_template, request
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from ..errors import NotFound

#: Scripts and styles come from our own static files only; no inline script can run.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; "
    "object-src 'none'"
)


def init_app(app: Flask) -> None:
    app.add_template_global(filter_args)

    @app.after_request
    def _headers(response):
        response.headers.setdefault("Content-Security-Policy", CSP)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        return response

    @app.errorhandler(CSRFError)
    def _csrf(error):
        message = _("The form has expired or did not come from this site. Reload and try again.")
        return render_template("error.html", status=400, message=message), 400

    @app.errorhandler(NotFound)
    def _not_found(error):
        return render_template("error.html", status=404, message=str(error)), 404

    @app.errorhandler(HTTPException)
    def _http(error):
        messages = {
            403: _("You are not allowed to open this page."),
            404: _("This page does not exist."),
            405: _("This page cannot be used that way."),
        }
        message = messages.get(error.code, error.description)
        return render_template("error.html", status=error.code, message=message), error.code


def form_values(exclude: tuple[str, ...] = ()) -> dict[str, str]:
    """The posted fields as strings, without the CSRF token and the ``exclude`` names."""
    return {
        key: value.strip()
        for key, value in request.form.items()
        if key != "csrf_token" and key not in exclude
    }


#: The query arguments that list pages filter by: the only ones their links (pager, forms that
#: come back to the list) carry on. Anything else, ``_method``, ``_external``, ``_scheme`` or
#: ``_anchor`` included, never reaches ``url_for``.
FILTER_ARGS = ("q", "method", "role", "status")
#: The last page number asked for that the list pages answer (its offset fits every database).
MAX_PAGE = 1_000_000


def filter_args() -> dict[str, str]:
    """This request's filter arguments, for a link back to the same list."""
    return {key: request.args[key] for key in FILTER_ARGS if request.args.get(key)}


def page_number() -> int:
    """The ``page`` argument; 400 with the rule when it is not a number from 1 to MAX_PAGE."""
    raw = request.args.get("page", "1").strip()
    if not (raw.isascii() and raw.isdigit() and len(raw) <= len(str(MAX_PAGE))) or not (
        1 <= int(raw) <= MAX_PAGE
    ):
        abort(
            400,
            description=_(
                "The page number must be a whole number from 1 to %(max)d.", max=MAX_PAGE
            ),
        )
    return int(raw)


def page_size() -> int:
    return int(current_app.config["PAGE_SIZE"])
