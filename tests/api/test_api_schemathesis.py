"""schemathesis against /api/v1/openapi.json: requests generated from the document (valid and
invalid ones) to every operation, with a write token, must never meet a server error, and every
answer must match the document (status, content type, headers, body); the same request
without the token must be refused.

The document is read once, at collection, from an app on a throwaway database (so there is one
test per operation); the requests go to one site shared by the module's tests. Kept small for CI:
a fixed number of examples per operation, derandomized so a run is repeatable.
"""

from __future__ import annotations

import pytest
import schemathesis
from enrolkit.api import tokens
from enrolkit.models import Base
from enrolkit.plugins import Plugins
from enrolkit.runtime import Runtime
from enrolkit.testing import SiteFactory
from enrolkit.web import create_app
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

BASE = "http://localhost"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def _document() -> dict:
    runtime = Runtime("sqlite://", Plugins())
    try:
        client = create_app({"TESTING": True}, runtime=runtime).test_client()
        return client.get("/api/v1/openapi.json").get_json()
    finally:
        runtime.dispose()


schema = schemathesis.openapi.from_dict(_document())


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One site for every operation: the app and a write token."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch = pytest.MonkeyPatch()
    # Flat-file uploads and processing use this folder; mail stays queued.
    monkeypatch.setenv("ENROLKIT_HOME", str(home))
    monkeypatch.delenv("ENROLKIT_SMTP_URL", raising=False)
    runtime = Runtime(f"sqlite:///{home / 'site.db'}", Plugins())
    Base.metadata.create_all(runtime.db)
    runtime.bootstrap()
    with runtime.site() as site, site.atomic():
        f = SiteFactory(site)
        ann = f.user("ann", department="Sales")
        f.course("MATH101", category="Sciences / Mathematics")
        f.cohort("promo", members=[ann])
    with runtime.site() as site:
        token = tokens.create(site, "schemathesis", tokens.WRITE)
    yield create_app({"TESTING": True}, runtime=runtime), token
    runtime.dispose()
    monkeypatch.undo()


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_the_api_keeps_to_its_openapi_document(case, shared):
    app, token = shared
    authorized = {"Authorization": f"Bearer {token}"}
    answer = case.call_and_validate(base_url=BASE, app=app, headers=authorized, checks=CHECKS)
    anonymous = case.call(base_url=BASE, app=app)  # the case's own headers, no valid token
    # Refused, unless no route answers that URL or method at all (404/405 before any check).
    routed = answer.status_code not in (404, 405) or anonymous.status_code == 401
    assert anonymous.status_code == 401 if routed else anonymous.status_code == answer.status_code
