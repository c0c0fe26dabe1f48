"""Logging in and out, the logged-in user of each request, and the failed-login limit.

The session holds the user's id and a signature of their password hash and session version
(``users.session_version``), checked on every request. Logging out, a new password (web, CLI,
API) and suspension raise the version, so a copy of an old cookie stops working at once: the
end is server-side, not a cookie the browser is trusted to forget. Logging out therefore ends
the user's sessions on every device, as a password change does.

Failed logins are written to the event log (``login_failed``, with username and address) for
admins to read. The limit itself counts with :mod:`enrolkit.throttle`: its one conditional upsert
reserves an attempt before the password is checked, or refuses it, so parallel attempts cannot
all read the same count; a success clears the key. It holds across processes and web nodes
sharing the database.
"""

from __future__ import annotations

import hashlib
import hmac
from functools import cache
from urllib.parse import urlsplit

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    url_for,
)
from flask import session as cookie
from flask_babel import gettext as _
from sqlalchemy import select

from .. import people, throttle
from ..errors import EnrolkitError
from ..log import record
from ..models import User
from .guards import close_site, login_required, public, site

bp = Blueprint("auth", __name__)


@cache
def _dummy_hash() -> str:
    """Checked when the username is unknown, so both cases take the same time."""
    return people.hash_password("not-a-real-password")


def init_app(app: Flask) -> None:
    app.before_request(load_user)
    app.teardown_request(close_site)

    @app.context_processor
    def _user():
        return {"current_user": g.get("user")}


def _session_digest(user: User) -> str:
    key = current_app.config["SECRET_KEY"]
    key = key.encode() if isinstance(key, str) else key
    signed = f"{user.session_version or 0}:{user.password_hash or ''}"
    return hmac.new(key, signed.encode(), hashlib.sha256).hexdigest()[:32]


def remember(user: User) -> None:
    """Tie the session to ``user``, their current password and session version."""
    cookie["uid"] = user.id
    cookie["auth"] = _session_digest(user)


def load_user() -> None:
    g.user = None
    user_id = cookie.get("uid")
    if user_id is None:
        return
    user = site().session.get(User, user_id)
    if (
        user is None
        or user.deleted
        or user.suspended
        or not hmac.compare_digest(cookie.get("auth", ""), _session_digest(user))
    ):
        cookie.clear()
        return
    g.user = user
    site().actor = user.username


def _throttle_key(username: str, address: str) -> str:
    """The login limit's key in :mod:`enrolkit.throttle` (a digest: any length of username)."""
    return "login:" + hashlib.sha256(f"{username}\0{address}".encode()).hexdigest()


def _attempt(username: str, address: str) -> str:
    return f"{username[:100]} from {address}"


def _safe_next(target: str | None) -> str:
    """Only a path on this site: never an absolute or scheme-relative URL (open redirect)."""
    if not target:
        return url_for("people.dashboard")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("people.dashboard")
    return target


@bp.route("/login", methods=["GET", "POST"])
@public
def login():
    if g.user is not None and request.method == "GET":
        return redirect(_safe_next(request.args.get("next")))
    error = None
    username = ""
    if request.method == "POST":
        username = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        refused = _attempt_login(username, password)
        if refused is None:
            return redirect(_safe_next(request.args.get("next")))
        status, error = refused
        return render_template("auth/login.html", error=error, username=username), status
    return render_template("auth/login.html", error=None, username=username)


def _attempt_login(username: str, password: str) -> tuple[int, str] | None:
    """Log in, or give the HTTP status and the reason why not. Fires ``on_login`` through
    :func:`people.login`."""
    s = site()
    address = request.remote_addr or "?"
    window = current_app.config["LOGIN_FAILURE_WINDOW"]
    key = _throttle_key(username[:100], address)
    wait = throttle.take(s, key, limit=current_app.config["LOGIN_MAX_FAILURES"], window=window)
    if wait:
        minutes = max(1, -(-wait // 60))
        return 429, _(
            "Too many failed attempts. Try again in %(minutes)d minutes.", minutes=minutes
        )
    user = s.session.scalar(select(User).where(User.username == username, User.deleted.is_(False)))
    valid = people.check_password(user.password_hash if user else _dummy_hash(), password)
    if user is None or not valid or user.suspended:
        with s.atomic():
            record(
                s,
                "login_failed",
                "core",
                user_id=user.id if user else None,
                reason=_attempt(username, address),
            )
        if valid and user is not None:
            return 403, _("This account is suspended.")
        return 401, _("Wrong username or password.")
    try:
        s.actor = user.username
        people.login(s, user)
    except EnrolkitError as exc:
        return 403, str(exc)
    throttle.forget(s, key, window=window)
    cookie.clear()
    remember(user)
    flash(_("Welcome, %(name)s.", name=user.fullname), "success")
    return None


@bp.post("/logout")
@login_required
def logout():
    s = site()
    with s.atomic():
        people.end_sessions(g.user)
    cookie.clear()
    flash(_("You are logged out."), "success")
    return redirect(url_for("auth.login"))
