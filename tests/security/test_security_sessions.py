"""Issue 12, item 5: a session ends server-side (logout, new password, suspension), the failed-
login limit cannot be raced, and the home and database are private to their owner."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

from enrolkit import db
from web_world import PASSWORD, csrf_token, log_in

ENROLKIT = str(Path(sys.executable).with_name("enrolkit"))


def _stolen_cookie(client) -> str:
    return client.get_cookie("session").value


def _replay(app, cookie: str):
    """A fresh browser presenting a copy of an old session cookie."""
    thief = app.test_client()
    thief.set_cookie("session", cookie)
    return thief.get("/")


def _is_login_redirect(response) -> bool:
    return response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_an_old_cookie_stops_working_after_logout(sec_app, as_user):
    client = as_user("student")
    cookie = _stolen_cookie(client)
    assert _replay(sec_app, cookie).status_code == 200
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    assert _is_login_redirect(_replay(sec_app, cookie))


def test_an_old_cookie_stops_working_after_a_password_change_on_the_web(
    sec_app, as_user, form_post, cast
):
    cookie = _stolen_cookie(as_user("student"))
    admin = as_user("admin")
    response = form_post(
        admin,
        f"/admin/users/{cast.student.id}",
        action="password",
        password="brand-new-secret",
        confirm="brand-new-secret",
    )
    assert response.status_code == 302
    assert _is_login_redirect(_replay(sec_app, cookie))
    assert admin.get("/").status_code == 200  # the admin's own session is untouched


def test_an_old_cookie_stops_working_after_a_password_change_by_the_api(sec_app, as_user, api):
    cookie = _stolen_cookie(as_user("student"))
    response = api("PUT", "/users/student/password", json={"password": "brand-new-secret"})
    assert response.status_code == 204
    assert _is_login_redirect(_replay(sec_app, cookie))


def test_an_old_cookie_stops_working_after_user_passwd_in_the_shell(
    sec_app, as_user, any_db, tmp_path
):
    cookie = _stolen_cookie(as_user("student"))
    env = {**os.environ, "ENROLKIT_HOME": str(tmp_path / "home"), "ENROLKIT_DATABASE_URL": any_db}
    result = subprocess.run(
        [ENROLKIT, "user", "passwd", "student"],
        input="brand-new-secret\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert _is_login_redirect(_replay(sec_app, cookie))


def test_a_suspension_ends_sessions_for_good_even_once_lifted(sec_app, as_user, api):
    cookie = _stolen_cookie(as_user("student"))
    assert api("PATCH", "/users/student", json={"suspended": True}).status_code == 200
    assert _is_login_redirect(_replay(sec_app, cookie))
    assert api("PATCH", "/users/student", json={"suspended": False}).status_code == 200
    assert _is_login_redirect(_replay(sec_app, cookie))  # lifting it does not revive the cookie
    assert log_in(sec_app.test_client(), "student").status_code == 302  # a new login works


def test_forty_parallel_attempts_get_at_most_the_limit_checked(sec_app):
    """The limit is 5 failures per username and address: of 40 simultaneous wrong guesses,
    at most 5 may reach the password check (401), the others are refused (429)."""
    limit = sec_app.config["LOGIN_MAX_FAILURES"]
    clients = [sec_app.test_client() for _ in range(40)]
    tokens = [csrf_token(client) for client in clients]
    start = threading.Barrier(len(clients))
    statuses: list[int] = []

    def attempt(client, token):
        start.wait()
        response = client.post(
            "/login",
            data={"username": "student", "password": "guess-guess", "csrf_token": token},
        )
        statuses.append(response.status_code)

    threads = [
        threading.Thread(target=attempt, args=pair) for pair in zip(clients, tokens, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert len(statuses) == 40
    assert set(statuses) <= {401, 429}
    assert statuses.count(401) <= limit, statuses
    assert statuses.count(429) >= 40 - limit
    # ... and the right password is refused too, until the window has passed.
    assert log_in(sec_app.test_client(), "student", PASSWORD).status_code == 429


def test_home_database_and_its_journal_files_are_private(tmp_path):
    previous = os.umask(0o022)  # a common default, which would make files world-readable
    try:
        home = tmp_path / "home"
        engine = db.make_engine(f"sqlite:///{home / 'enrolkit.db'}")
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
            modes = {
                path.name: stat.S_IMODE(path.stat().st_mode) for path in (home, *home.iterdir())
            }
        engine.dispose()
    finally:
        os.umask(previous)
    assert modes["home"] == 0o700
    assert modes["enrolkit.db"] == 0o600
    assert modes["enrolkit.db-wal"] == 0o600 and modes["enrolkit.db-shm"] == 0o600


def test_enrolkit_creates_a_private_home_from_the_shell(tmp_path):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "ENROLKIT_DATABASE_URL"}
    env["ENROLKIT_HOME"] = str(home)
    result = subprocess.run(
        [ENROLKIT, "db", "upgrade"], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for name in ("enrolkit.db", "enrolkit.db-wal", "enrolkit.db-shm"):
        path = home / name
        if path.exists():
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
