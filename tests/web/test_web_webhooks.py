"""The admin home tells when the delivery task disabled a failing webhook."""

from __future__ import annotations

from enrolkit import webhooks
from enrolkit.models import WebhookSubscription


def test_the_admin_home_names_webhooks_disabled_after_failures(client_as, web_runtime, monkeypatch):
    monkeypatch.setenv(webhooks.ALLOW_ENV, "127.0.0.0/8")
    with web_runtime.site() as site:
        failing, _ = webhooks.add(site, "http://127.0.0.1:9/failing", "user_enrolled")
        by_hand, _ = webhooks.add(site, "http://127.0.0.1:9/by-hand", "user_enrolled")
        webhooks.set_enabled(site, by_hand.id, False)
        with site.atomic():
            row = site.session.get(WebhookSubscription, failing.id)
            row.status, row.failing_since = "disabled", 1
            row.disabled_reason = "failing since 2026-09-01: HTTP 503 Service Unavailable"

    page = client_as("admin").get("/admin/").get_data(as_text=True)

    assert "disabled after a day of failed deliveries" in page
    assert "http://127.0.0.1:9/failing" in page and "HTTP 503" in page
    assert "by-hand" not in page
