"""Webhook subscriptions through the REST API, delivered to a real receiver on loopback."""

from __future__ import annotations

import pytest
from enrolkit import webhooks
from enrolkit.enrolments import enrol_manually
from enrolkit.models import Course, User


@pytest.fixture
def allow_loopback(monkeypatch):
    monkeypatch.setenv(webhooks.ALLOW_ENV, "127.0.0.0/8")


def test_a_subscription_is_made_listed_disabled_and_removed(api, allow_loopback):
    made = api.post(
        "/webhooks",
        json={"url": "http://127.0.0.1:9/in", "events": ["user_enrolled"], "course": "MATH101"},
    )
    assert made.status_code == 201, made.get_json()
    body = made.get_json()
    assert body["secret"].startswith("whsec_") and body["status"] == "active"
    listed = api.get("/webhooks").get_json()
    assert [w["url"] for w in listed] == ["http://127.0.0.1:9/in"] and "secret" not in listed[0]
    assert api.get("/webhooks", token="read").status_code == 200
    changed = api.patch(f"/webhooks/{body['id']}", json={"status": "disabled"})
    assert changed.get_json()["status"] == "disabled"
    assert api.delete(f"/webhooks/{body['id']}").status_code == 204
    assert api.get(f"/webhooks/{body['id']}").status_code == 404


def test_bad_subscriptions_are_refused_with_a_reason(api, monkeypatch):
    monkeypatch.delenv(webhooks.ALLOW_ENV, raising=False)
    refused = api.post(
        "/webhooks", json={"url": "http://127.0.0.1/in", "events": ["user_enrolled"]}
    )
    assert refused.status_code == 422 and "not a public address" in refused.get_json()["message"]
    unknown = api.post("/webhooks", json={"url": "http://x.invalid/", "events": ["nope"]})
    assert unknown.status_code == 422 and "unknown webhook event" in unknown.get_json()["message"]
    read_only = api.post(
        "/webhooks", json={"url": "http://x/", "events": ["user_enrolled"]}, token="read"
    )
    assert read_only.status_code == 403


def test_deliveries_are_listed_and_replayed(api, api_runtime, allow_loopback):
    body = api.post(
        "/webhooks", json={"url": "http://127.0.0.1:9/in", "events": ["user_enrolled"]}
    ).get_json()
    with api_runtime.site() as site:
        user = site.session.query(User).filter_by(username="bob").one()
        course = site.session.query(Course).filter_by(shortname="PHYS101").one()
        enrol_manually(site, user, course)
        webhooks.deliver(site)  # port 9 refuses: the batch fails and waits
    (failed,) = api.get(f"/webhooks/{body['id']}/deliveries?failed=true").get_json()
    assert failed["attempts"] == 1 and failed["webhook_id"].startswith("msg_")
    listed = api.get(f"/webhooks/{body['id']}").get_json()
    assert listed["failures"] == 1 and listed["last_delivered"] == 0 and listed["waiting"] == 1
    assert "ConnectionRefusedError" in listed["last_error"]
    assert api.post(f"/webhooks/deliveries/{failed['id']}/replay").status_code == 202
    (again,) = api.get(f"/webhooks/{body['id']}/deliveries").get_json()
    assert again["attempts"] == 0 and again["webhook_id"] == failed["webhook_id"]
