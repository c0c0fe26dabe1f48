"""Fixtures for the web tests: the shared small site (``web_world``) on SQLite, and the
whole-site browser fixtures."""

from __future__ import annotations

import pytest
from browser_site import browser, server, visit  # noqa: F401  (whole-site browser fixtures)
from web_world import (  # noqa: F401  (the shared site's fixtures)
    app,
    client_as,
    csrf,
    drop,
    hashed_password,
    login,
    post,
    world,
)


@pytest.fixture
def web_runtime(make_runtime):
    """Every installed plugin, as a real site has them."""
    return make_runtime(entry_points=True)
