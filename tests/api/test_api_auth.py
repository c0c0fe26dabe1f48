"""Bearer tokens: missing, wrong, revoked and read-scope tokens are refused, and refused requests
change nothing; the token commands; JSON errors under /api/v1 while the web keeps its pages."""

from __future__ import annotations

from enrolkit.api import tokens
from enrolkit.models import ApiToken, CohortMember, LogEntry
from sqlalchemy import func, select


def count(runtime, model) -> int:
    with runtime.site() as site:
        return site.session.scalar(select(func.count()).select_from(model))


def test_a_request_without_a_token_is_refused_with_a_challenge(api):
    response = api.get("/users", token=None)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = response.get_json()
    assert body["code"] == 401 and "Authorization: Bearer" in body["message"]


def test_a_wrong_or_malformed_token_is_refused(api, token):
    assert api.get("/users", token="ek_not-a-real-token").status_code == 401
    basic = api.get("/users", token=None, headers={"Authorization": f"Basic {token.write}"})
    assert basic.status_code == 401
    empty = api.get("/users", token=None, headers={"Authorization": "Bearer "})
    assert empty.status_code == 401


def test_a_revoked_token_stops_working(api, api_runtime, token):
    assert api.get("/users").status_code == 200
    with api_runtime.site() as site:
        tokens.revoke(site, "hr-system")
    response = api.get("/users")
    assert response.status_code == 401
    assert "revoked" in response.get_json()["message"]


def test_a_read_token_reads_but_cannot_change_anything(api, api_runtime, world):
    assert api.get("/cohorts/promo/members", token="read").status_code == 200
    before = count(api_runtime, CohortMember)
    refused = api.post("/cohorts/promo/members", token="read", json={"usernames": ["bob"]})
    assert refused.status_code == 403
    assert "write scope" in refused.get_json()["message"]
    assert count(api_runtime, CohortMember) == before
    for method, path in (("DELETE", "/cohorts/promo"), ("PATCH", "/methods/manual")):
        assert api(method, path, token="read", json={}).status_code == 403
    allowed = api.post("/cohorts/promo/members", json={"usernames": ["bob"]})
    assert allowed.status_code == 200 and allowed.get_json()["added"] == ["bob"]


def test_writes_need_no_csrf_token_and_name_the_token_in_the_log(api, api_runtime, world):
    response = api.post("/events/login", json={"username": "bob"})
    assert response.status_code == 200
    with api_runtime.site() as site:
        entry = site.session.scalars(
            select(LogEntry).where(LogEntry.event == "user_loggedin")
        ).one()
    assert entry.origin == "api"


def test_only_the_digest_of_a_token_is_stored(api_runtime, token):
    with api_runtime.site() as site:
        stored = site.session.scalar(select(ApiToken).where(ApiToken.name == "hr-system"))
    assert stored.token_hash == tokens.digest(token.write) != token.write
    assert token.write not in stored.token_hash


def test_the_openapi_document_is_public_and_describes_the_bearer_scheme(app):
    response = app.test_client().get("/api/v1/openapi.json")
    assert response.status_code == 200
    spec = response.get_json()
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert {"/api/v1/users", "/api/v1/courses/{shortname}/instances", "/api/v1/log"} <= set(
        spec["paths"]
    )
    listing = spec["paths"]["/api/v1/users"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"page", "page_size"}
    assert "401" in listing["responses"]


def test_errors_under_the_api_are_json_and_web_pages_keep_theirs(api, app):
    missing = api.get("/no-such-thing")
    assert missing.status_code == 404 and missing.get_json()["code"] == 404
    wrong_method = api("PUT", "/users")
    assert wrong_method.status_code == 405 and wrong_method.get_json()["code"] == 405
    page = app.test_client().get("/no-such-page")
    assert page.status_code == 404 and page.mimetype == "text/html"


def test_token_commands_show_the_token_once_and_revoke_it(make_runtime, tmp_path, monkeypatch):
    from enrolkit.testing import run_cli
    from enrolkit.web import create_app

    runtime = make_runtime()
    app = create_app({"TESTING": True}, runtime=runtime)

    def run(*args):
        return run_cli(runtime, *args)

    made = run("token", "create", "lms", "--scope", "write")
    assert made.exit_code == 0, made.output
    raw = made.stdout.strip()
    assert raw.startswith(tokens.TOKEN_PREFIX) and len(raw) > 40
    listed = run("token", "list", "--json")
    assert '"scope": "write"' in listed.output and raw not in listed.output
    client = app.test_client()
    headers = {"Authorization": f"Bearer {raw}"}
    assert client.get("/api/v1/users", headers=headers).status_code == 200
    again = run("token", "create", "lms")
    assert again.exit_code == 1 and "exists" in again.output
    assert run("token", "revoke", "lms").exit_code == 0
    assert client.get("/api/v1/users", headers=headers).status_code == 401
    assert run("token", "revoke", "nobody").exit_code == 1
    bad = run("token", "create", "x", "--scope", "admin")
    assert bad.exit_code == 2
