"""A site with every installed plugin on each backend, the web app serving /scim/v2, and a
client sending a ``scim`` token."""

from __future__ import annotations

import pytest
from enrolkit.api import tokens
from enrolkit.web import create_app


@pytest.fixture
def scim_runtime(make_runtime, any_db):
    return make_runtime(url=any_db, entry_points=True)


@pytest.fixture
def scim_token(scim_runtime) -> str:
    with scim_runtime.site() as site:
        return tokens.create(site, "idp", tokens.SCIM)


class Scim:
    def __init__(self, client, token: str) -> None:
        self.client, self.token = client, token

    def __call__(self, method: str, path: str, token: str | None = None, **kwargs):
        headers = {"Authorization": f"Bearer {token or self.token}", **kwargs.pop("headers", {})}
        if "json" in kwargs:
            headers.setdefault("Content-Type", "application/scim+json")
        return self.client.open(f"/scim/v2{path}", method=method, headers=headers, **kwargs)


@pytest.fixture
def scim(scim_runtime, scim_token) -> Scim:
    app = create_app({"TESTING": True}, runtime=scim_runtime)
    return Scim(app.test_client(), scim_token)
