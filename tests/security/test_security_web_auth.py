"""Attacks on logging in, through the web: guessing passwords (the failed-login limit), an old
session after a password change, a login or language form sent on to another site (open
redirect), the session cookie's flags and the secret key, framing and inline scripts."""

from __future__ import annotations

import stat

from enrolkit import people
from enrolkit.models import User
from enrolkit.web import create_app
from web_world import PASSWORD


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


def test_a_forged_next_address_is_not_followed(app, csrf):
    client = app.test_client()
    response = client.post(
        "/language", data={"lang": "fr", "next": "//evil.example/", "csrf_token": csrf(client)}
    )
    assert response.headers["Location"] == "/"
