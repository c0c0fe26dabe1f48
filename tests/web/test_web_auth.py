"""Logging in and out, a wrong password, a suspended user. (The attacks on logging in, the
failed-login limit, the session cookie and the secret key: tests/security/test_security_web_auth.py.)"""

from __future__ import annotations

from enrolkit.models import LogEntry, User
from sqlalchemy import func, select


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


def test_a_suspended_user_cannot_login(login, csrf, app, world, web_runtime):
    with web_runtime.site() as site, site.atomic():
        site.session.get(User, world.student.id).suspended = True
    response = login(app.test_client(), "student")
    assert response.status_code == 403
    assert "suspended" in response.get_data(as_text=True)
