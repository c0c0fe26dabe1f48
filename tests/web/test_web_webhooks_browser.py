"""Webhooks in the web admin, in a real browser (Debian's chromium driven by Playwright) against
the app served by waitress on loopback, as in production: the admin subscribes a receiver with
the form, copies the secret shown once, and the receiver verifies the deliveries with it
(``standardwebhooks``); then the failed filter, a replay, disable/enable and the removal."""

from __future__ import annotations

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from enrolkit import lookup, people, webhooks
from enrolkit.enrolments import enrol_manually
from enrolkit.models import Base
from enrolkit.plugins import Plugins
from enrolkit.runtime import Runtime
from enrolkit.testing import SiteFactory
from enrolkit.web import create_app
from standardwebhooks import Webhook

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip
PASSWORD = "browser-pass-1"
SHOTS = Path(
    os.environ.get("ENROLKIT_SCREENSHOTS")
    or Path(__file__).parents[2] / "artifacts" / "screenshots"
)

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs the Debian package chromium")
    pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


class Receiver:
    """Verifies each request with the secret the admin copied; answers 500 while ``failing``."""

    def __init__(self) -> None:
        self.secret = ""
        self.failing = False
        self.verified: list[str] = []  # the usernames of the events accepted
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                payload = Webhook(receiver.secret).verify(body, dict(self.headers))
                status = 500 if receiver.failing else 204
                if status == 204:
                    receiver.verified += [e["data"]["username"] for e in payload["data"]["events"]]
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/lms-hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def served(tmp_path, monkeypatch):
    from waitress.server import create_server

    monkeypatch.setenv(webhooks.ALLOW_ENV, "127.0.0.0/8")
    runtime = Runtime(f"sqlite:///{tmp_path / 'site.db'}", Plugins(entry_points=True))
    Base.metadata.create_all(runtime.db)
    runtime.bootstrap()
    with runtime.site() as site, site.atomic():
        factory = SiteFactory(site)
        admin = factory.user("admin", siteadmin=True, firstname="Ada", lastname="Admin")
        admin.password_hash = people.hash_password(PASSWORD)
        factory.instance(factory.course("MATH101"), "manual")
    app = create_app({"SECRET_KEY": "browser-test-key", "PROPAGATE_EXCEPTIONS": False}, runtime)
    wsgi = create_server(app, host="127.0.0.1", port=0, threads=4)
    thread = threading.Thread(target=wsgi.run, daemon=True)
    thread.start()
    receiver = Receiver()
    yield f"http://127.0.0.1:{wsgi.effective_port}", runtime, receiver
    receiver.server.shutdown()
    receiver.server.server_close()
    wsgi.close()
    thread.join(5)
    runtime.dispose()


@pytest.fixture
def page(served):
    base, _runtime, _receiver = served
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        context = browser.new_context(base_url=base, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(15_000)
        page = context.new_page()
        page.goto("/login")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{base}/")
        yield page
        context.close()
        browser.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def enrol_and_deliver(runtime, username: str) -> None:
    """A change on the site, then the delivery task's work (as cron would run it)."""
    with runtime.site() as site:
        user = SiteFactory(site).user(username)
        enrol_manually(site, user, lookup.course(site.session, "MATH101"))
        webhooks.deliver(site)


def test_an_admin_manages_a_webhook_in_the_browser(served, page):
    base, runtime, receiver = served
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.get_by_role("link", name="Site administration").click()
    page.get_by_role("link", name="Webhooks").first.click()
    page.get_by_text("No webhook yet.").wait_for()
    page.get_by_role("link", name="Add a webhook").click()
    page.get_by_label("Receiver URL").fill(receiver.url)
    for label in ("A role is assigned", "A role is unassigned", "A user is unenrolled"):
        page.get_by_label(label).uncheck()
    page.get_by_label("Only this course (short name)").fill("MATH101")
    shot(page, "admin-webhook-add")
    page.get_by_role("button", name="Add the webhook").click()

    secret = page.get_by_label("Signing secret").input_value()
    assert secret.startswith("whsec_")
    shot(page, "admin-webhook-secret")
    receiver.secret = secret
    page.get_by_role("link", name="Back to the webhooks").click()
    row = page.locator("tr", has_text=receiver.url)
    assert "course MATH101" in row.inner_text() and "never" in row.inner_text()
    assert secret not in page.content()

    enrol_and_deliver(runtime, "jean")  # verified with the secret from the page
    assert receiver.verified == ["jean"]
    receiver.failing = True
    enrol_and_deliver(runtime, "marie")
    page.reload()
    assert row.locator("td.failures").inner_text().startswith("1")
    shot(page, "admin-webhooks")

    row.get_by_role("link", name="Deliveries").click()
    page.get_by_label("failed only").check()
    page.get_by_role("button", name="Filter").click()
    failed = page.locator("table.deliveries tbody tr")
    assert failed.count() == 1 and "HTTP 500" in failed.inner_text()
    shot(page, "admin-webhook-deliveries")
    receiver.failing = False
    failed.get_by_role("button", name="Replay").click()
    page.locator(".flash-success").wait_for()
    with runtime.site() as site:
        webhooks.deliver(site)
    assert receiver.verified == ["jean", "marie"]

    page.get_by_role("link", name="Webhooks").first.click()
    row.get_by_role("button", name="Disable").click()
    assert "disabled" in row.inner_text()
    row.get_by_role("button", name="Enable").click()
    assert "active" in row.inner_text()
    row.get_by_role("link", name="Remove").click()
    page.get_by_role("heading", name="Remove webhook 1?").wait_for()
    shot(page, "admin-webhook-remove")
    page.get_by_role("button", name="Remove").click()
    page.get_by_text("Webhook 1 removed.").wait_for()
    page.get_by_text("No webhook yet.").wait_for()
    assert not errors
    with runtime.site() as site:
        assert json.dumps(webhooks.listing(site)) == "[]"
