"""Webhooks in the web admin: the list, a new subscription with its secret shown once,
disable/enable, removal after a confirmation, the deliveries, the failed filter and a replay;
and the admin home naming what the delivery task disabled. On both backends, with real
deliveries to real sockets on loopback."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from enrolkit import webhooks
from enrolkit.enrolments import enrol_manually
from enrolkit.models import WebhookDelivery, WebhookSubscription
from sqlalchemy import func, select


@pytest.fixture
def web_runtime(make_runtime, any_db):
    """This module's pages on each backend (the web fixtures' default is SQLite)."""
    return make_runtime(url=any_db, entry_points=True)


@pytest.fixture(autouse=True)
def loopback_allowed(monkeypatch):
    monkeypatch.setenv(webhooks.ALLOW_ENV, "127.0.0.0/8")


@pytest.fixture
def accepting():
    """A receiver on loopback that accepts every request (204)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    server.shutdown()
    server.server_close()


@pytest.fixture
def refusing() -> str:
    """A loopback URL where nothing listens: every delivery fails (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/down"


def count(runtime, model) -> int:
    with runtime.site() as site:
        return site.session.scalar(select(func.count()).select_from(model))


def test_the_admin_home_names_webhooks_disabled_after_failures(client_as, web_runtime):
    with web_runtime.site() as site:
        failing, _ = webhooks.add(site, "http://127.0.0.1:9/failing", "user_enrolled")
        by_hand, _ = webhooks.add(site, "http://127.0.0.1:9/by-hand", "user_enrolled")
        webhooks.set_enabled(site, by_hand.id, False)
        with site.atomic():
            row = site.session.get(WebhookSubscription, failing.id)
            row.status, row.failing_since = "disabled", 1
            row.disabled_reason = "failing since 2026-09-01: HTTP 503 Service Unavailable"
        assert [s.id for s in webhooks.disabled_after_failures(site)] == [failing.id]

    page = client_as("admin").get("/admin/").get_data(as_text=True)

    assert "disabled after a day of failed deliveries" in page
    assert "http://127.0.0.1:9/failing" in page and "HTTP 503" in page
    assert "by-hand" not in page
    assert 'href="/admin/webhooks"' in page


def test_an_admin_adds_a_webhook_and_sees_its_secret_once(client_as, csrf, world, accepting):
    admin = client_as("admin")
    form = admin.get("/admin/webhooks/add").get_data(as_text=True)
    assert form.count('type="checkbox" name="events"') == len(webhooks.EVENTS)

    response = admin.post(
        "/admin/webhooks/add",
        data={
            "url": accepting,
            "events": ["user_enrolled", "role_assigned"],
            "course": "MATH101",
            "method": "manual",
            "csrf_token": csrf(admin),
        },
    )

    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    secret = page.split('class="secret"', 1)[0].rsplit('value="', 1)[1].split('"', 1)[0]
    assert secret.startswith("whsec_") and "shown this once" in page
    listing = admin.get("/admin/webhooks").get_data(as_text=True)
    assert accepting in listing and "course MATH101" in listing and "method manual" in listing
    assert "user_enrolled" in listing and "role_assigned" in listing
    assert "user_unenrolled" not in listing.split(accepting, 1)[1].split("</tr>", 1)[0]
    assert secret not in listing and "whsec_" not in listing


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "", "events": ["user_enrolled"]}, "Give the receiver&#39;s URL"),
        ({"url": "http://127.0.0.1:9/x", "events": []}, "Choose at least one event."),
        (
            {"url": "http://127.0.0.1:9/x", "events": ["user_enrolled"], "course": "NOPE"},
            "No course has the short name NOPE.",
        ),
        (
            {"url": "http://10.1.2.3/x", "events": ["user_enrolled"]},
            "This URL is refused: webhook host &#39;10.1.2.3&#39; resolves to 10.1.2.3",
        ),
        (
            {"url": "http://169.254.169.254/latest", "events": ["user_enrolled"]},
            "not a public address",
        ),
    ],
)
def test_bad_input_is_refused_with_the_form_kept_and_nothing_made(
    client_as, csrf, world, web_runtime, fields, message
):
    admin = client_as("admin")
    response = admin.post("/admin/webhooks/add", data={**fields, "csrf_token": csrf(admin)})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page and "Traceback" not in page
    assert 'class="field-error"' in page
    assert count(web_runtime, WebhookSubscription) == 0


def test_disable_enable_and_remove_after_confirming(client_as, post, world, web_runtime):
    with web_runtime.site() as site:
        subscription, _ = webhooks.add(site, "http://127.0.0.1:9/hook", webhooks.EVENTS)
        enrol_manually(
            site, site.session.get(type(world.student), world.student.id), world.other_course
        )
        subscription_id = subscription.id
    admin = client_as("admin")

    page = post(admin, f"/admin/webhooks/{subscription_id}/disable", follow=True)
    assert f"Webhook {subscription_id} disabled" in page.get_data(as_text=True)
    assert "badge-off" in page.get_data(as_text=True)
    page = post(admin, f"/admin/webhooks/{subscription_id}/enable", follow=True)
    assert "badge-on" in page.get_data(as_text=True)

    confirm = admin.get(f"/admin/webhooks/{subscription_id}/remove").get_data(as_text=True)
    assert "Remove webhook" in confirm and "the 2 events still waiting" in confirm
    assert count(web_runtime, WebhookSubscription) == 1  # asking removes nothing
    page = post(admin, f"/admin/webhooks/{subscription_id}/remove", follow=True)
    assert f"Webhook {subscription_id} removed." in page.get_data(as_text=True)
    assert count(web_runtime, WebhookSubscription) == 0
    assert admin.get(f"/admin/webhooks/{subscription_id}/remove").status_code == 404
    assert post(admin, f"/admin/webhooks/{subscription_id}/enable").status_code == 404


def test_deliveries_the_failed_filter_and_a_replay(
    client_as, post, world, web_runtime, accepting, refusing
):
    with web_runtime.site() as site:
        good, _ = webhooks.add(site, accepting, "user_enrolled")
        bad, _ = webhooks.add(site, refusing, "user_enrolled")
        student = site.session.get(type(world.student), world.student.id)
        enrol_manually(site, student, world.other_course)
        webhooks.deliver(site)
        delivered, failing = (
            site.session.scalar(
                select(WebhookDelivery.id).where(WebhookDelivery.subscription_id == s.id)
            )
            for s in (good, bad)
        )
    admin = client_as("admin")

    listing = admin.get("/admin/webhooks").get_data(as_text=True)
    good_row = listing.split(f'id="webhook-{good.id}"', 1)[1].split("</tr>", 1)[0]
    bad_row = listing.split(f'id="webhook-{bad.id}"', 1)[1].split("</tr>", 1)[0]
    assert "never" not in good_row and "never" in bad_row
    assert "ConnectionRefusedError" in bad_row
    assert '<td class="failures">1' in bad_row and '<td class="failures">0' in good_row

    every = admin.get("/admin/webhooks/deliveries").get_data(as_text=True)
    assert f'id="delivery-{delivered}"' in every and f'id="delivery-{failing}"' in every
    failed = admin.get("/admin/webhooks/deliveries?failed=1").get_data(as_text=True)
    assert f'id="delivery-{failing}"' in failed and f'id="delivery-{delivered}"' not in failed
    one = admin.get(f"/admin/webhooks/deliveries?webhook={good.id}").get_data(as_text=True)
    assert f'id="delivery-{delivered}"' in one and f'id="delivery-{failing}"' not in one
    assert admin.get("/admin/webhooks/deliveries?webhook=999").status_code == 404

    page = post(
        admin, f"/admin/webhooks/deliveries/{delivered}/replay", follow=True, webhook=str(good.id)
    ).get_data(as_text=True)
    assert f"Delivery {delivered} will be sent again" in page
    row = page.split(f'id="delivery-{delivered}"', 1)[1].split("</tr>", 1)[0]
    assert "waiting" in row and f'id="delivery-{failing}"' not in page  # the filter kept
    with web_runtime.site() as site:
        assert site.session.get(WebhookDelivery, delivered).status == "pending"
        assert webhooks.deliver(site).sent == 1
    assert post(admin, "/admin/webhooks/deliveries/999/replay").status_code == 404


def test_the_pages_speak_french(client_as, post, world):
    admin = client_as("admin")
    post(admin, f"/user/{world.admin.id}", lang="fr")
    page = admin.get("/admin/webhooks").get_data(as_text=True)
    assert "Ajouter un webhook" in page and "Aucun webhook" in page
    form = admin.get("/admin/webhooks/add").get_data(as_text=True)
    assert "Un utilisateur est inscrit" in form
