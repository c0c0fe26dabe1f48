"""The change feed through the REST API."""

from __future__ import annotations


def test_the_feed_pages_with_the_next_cursor(api, world):
    first = api.get("/changes?limit=2", token="read")
    assert first.status_code == 200
    body = first.get_json()
    assert [(c["event"], c["username"]) for c in body["changes"]] == [
        ("user_enrolled", "teacher"),
        ("role_assigned", "teacher"),
    ]
    rest = api.get(f"/changes?after={body['next']}").get_json()
    assert [(c["event"], c["username"]) for c in rest["changes"]] == [
        ("user_enrolled", "ann"),
        ("role_assigned", "ann"),
    ]
    assert api.get(f"/changes?after={rest['next']}").get_json()["changes"] == []


def test_a_bad_cursor_or_limit_is_a_422_naming_the_field(api, world):
    assert "after" in api.field_errors(api.get("/changes?after=nonsense"), "query")
    assert "limit" in api.field_errors(api.get("/changes?limit=0"), "query")
