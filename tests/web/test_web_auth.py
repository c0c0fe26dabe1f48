"""Logging in and out, the failed-login limit, the session cookie and the secret key."""

from __future__ import annotations

import stat

from enrolkit import people
from enrolkit.models import LogEntry, User
from enrolkit.web import create_app
from sqlalchemy import func, select

PASSWORD = "correct-horse-battery"


def _log_count(runtime, event: str) -> int:
    with runtime.site() as site:
        return site.session.scalar(
            select(func.count()).select_from(LogEntry).where(LogEntry.event == event)
        )


def test_logging_in_fires_on_login_and_logging_out_ends_the_session(
    login, csrf, app, world, web_runtime
):
    client = app.test_client()
    assert client.get("/").headers["Location"].startswith("/login")
    response = login(client, "student")
    assert response.status_code == 302
    assert _log_count(web_runtime, "user_loggedin") == 1
    with web_runtime.site() as site:
        assert site.session.get(User, world.student.id).lastlogin > 0
    page = client.get("/").get_data(as_text=True)
    assert "Maths" in page and "Jean Dupont" in page

    client.post("/logout", data={"csrf_token": csrf(client)})
    assert client.get("/").status_code == 302


def test_a_wrong_password_is_refused_and_logged(login, csrf, app, world, web_runtime):
    client = app.test_client()
    response = login(client, "student", "wrong-password")
    assert response.status_code == 401
    assert "Wrong username or password." in response.get_data(as_text=True)
    response = login(client, "nobody", "wrong-password")
    assert response.status_code == 401
    assert _log_count(web_runtime, "login_failed") == 2
    assert _log_count(web_runtime, "user_loggedin") == 0
    assert client.get("/").status_code == 302


def test_five_failures_lock_the_username_from_that_address_for_a_while(
    login, csrf, app, world, web_runtime, clock
):
    client = app.test_client()
    for _attempt in range(5):
        assert login(client, "student", "guess-guess").status_code == 401
    response = login(client, "student")  # the right password, too late
    assert response.status_code == 429
    assert "Too many failed attempts" in response.get_data(as_text=True)
    assert login(client, "teacher").status_code == 302  # another username is not locked

    clock.advance(15 * 60 + 1)
    assert login(app.test_client(), "student").status_code == 302


def test_a_suspended_user_cannot_login(login, csrf, app, world, web_runtime):
    with web_runtime.site() as site, site.atomic():
        site.session.get(User, world.student.id).suspended = True
    response = login(app.test_client(), "student")
    assert response.status_code == 403
    assert "suspended" in response.get_data(as_text=True)


def test_a_new_password_ends_the_other_sessions(login, csrf, app, world, web_runtime):
    client = app.test_client()
    login(client, "student")
    assert client.get("/").status_code == 200
    with web_runtime.site() as site, site.atomic():
        site.session.get(User, world.student.id).password_hash = people.hash_password(
            "new-pass-word"
        )
    assert client.get("/").status_code == 302


def test_next_only_leads_to_this_site(login, csrf, app, world):
    client = app.test_client()
    token = csrf(client)
    for target, expected in (
        ("/courses", "/courses"),
        ("//evil.example/x", "/"),
        ("https://evil.example/", "/"),
    ):
        client.get("/login")
        response = client.post(
            f"/login?next={target}",
            data={"username": "student", "password": PASSWORD, "csrf_token": token},
        )
        assert response.headers["Location"] == expected, target
        client.post("/logout", data={"csrf_token": csrf(client)})
        token = csrf(client)


def test_session_cookie_is_httponly_samesite_and_secure_outside_tests(
    login, csrf, web_runtime, world, tmp_path, monkeypatch
):
    monkeypatch.setenv("ENROLKIT_HOME", str(tmp_path / "home"))
    app = create_app({}, runtime=web_runtime)
    assert app.config["SECRET_KEY"] is None  # no fixed default: made at the first request
    client = app.test_client()
    response = login(client, "student")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    key_file = tmp_path / "home" / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = key_file.read_text().strip()
    assert len(key) == 64 and app.config["SECRET_KEY"] == key
    # A second process (app) reads the same key, so sessions survive a restart.
    again = create_app({}, runtime=web_runtime)
    again.test_client().get("/login")
    assert again.config["SECRET_KEY"] == key


def test_security_headers_forbid_framing_and_inline_scripts(login, csrf, app):
    response = app.test_client().get("/login")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
