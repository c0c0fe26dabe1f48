"""Logging in and out, the logged-in user of each request, and the failed-login limit.

The session holds the user's id and a digest of their password hash, so changing a password
(or suspending the account) ends every other session at its next request. Failed logins are
written to the event log (``login_failed``, with username and address), which is also what the
limit counts: it holds across processes and web nodes sharing the database, and admins see the
attempts on the log page.
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
from sqlalchemy import func, select

from .. import people
from ..errors import EnrolkitError
from ..log import record
from ..models import LogEntry, User
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
    return hmac.new(key, (user.password_hash or "").encode(), hashlib.sha256).hexdigest()[:32]


def remember(user: User) -> None:
    """Tie the session to ``user`` and their current password."""
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


def _failures(username: str, address: str, since: int) -> int:
    return site().session.scalar(
        select(func.count())
        .select_from(LogEntry)
        .where(
            LogEntry.time >= since,
            LogEntry.component == "core",
            LogEntry.event == "login_failed",
            LogEntry.reason == _attempt(username, address),
        )
    )


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
    now = s.now()
    user = s.session.scalar(select(User).where(User.username == username, User.deleted.is_(False)))
    since = now - window
    if user is not None and user.lastlogin > since:
        since = user.lastlogin  # a success starts the count afresh
    if _failures(username, address, since) >= current_app.config["LOGIN_MAX_FAILURES"]:
        minutes = max(1, window // 60)
        return 429, _(
            "Too many failed attempts. Try again in %(minutes)d minutes.", minutes=minutes
        )
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
    cookie.clear()
    remember(user)
    flash(_("Welcome, %(name)s.", name=user.fullname), "success")
    return None


@bp.post("/logout")
@login_required
def logout():
    cookie.clear()
    flash(_("You are logged out."), "success")
    return redirect(url_for("auth.login"))
