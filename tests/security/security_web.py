"""Helpers the attack modules import: the test password and a login through the real form.

They live in a module with a name of its own, not in ``conftest``: several test folders have a
``conftest`` module, and ``from conftest import ...`` inside a test gets whichever was loaded last.
"""

from __future__ import annotations

import re

PASSWORD = "correct-horse-battery"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client) -> str:
    """A valid CSRF token for this client's session, read from a page as a browser would."""
    response = client.get("/login")
    if response.status_code == 302:
        response = client.get("/")
    found = _TOKEN.search(response.get_data(as_text=True))
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


def log_in(client, username: str, password: str = PASSWORD):
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": csrf_token(client)},
    )
