"""Server-side request forgery through webhooks: a subscription must not make enrolkit post to
the machine itself, the private network or a cloud metadata service, unless the operator allows
that network; and a receiver cannot send the request elsewhere with a redirect."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from enrolkit import webhooks
from enrolkit.enrolments import enrol_manually
from enrolkit.models import WebhookSubscription
from sqlalchemy import func, select

INTERNAL = [
    "http://127.0.0.1/hook",
    "http://localhost:8080/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
    "http://2130706433/hook",  # 127.0.0.1 as one number
    "http://0x7f.1/hook",
    "http://0.0.0.0/hook",
    "http://10.0.0.5/hook",
    "http://172.16.3.4/hook",
    "http://192.168.1.1/hook",
    "http://169.254.169.254/latest/meta-data/",  # AWS, GCP, Azure metadata
    "http://[fd00:ec2::254]/latest/meta-data/",  # AWS metadata over IPv6
    "http://100.100.100.200/latest/meta-data/",  # Alibaba metadata (shared address space)
    "http://[fe80::1]/hook",
    "http://224.0.0.1/hook",
]


@pytest.fixture
def site(db_site, monkeypatch):
    monkeypatch.delenv(webhooks.ALLOW_ENV, raising=False)
    return db_site


def count(site) -> int:
    return site.session.scalar(select(func.count()).select_from(WebhookSubscription))


@pytest.mark.parametrize("url", INTERNAL)
def test_internal_addresses_are_refused(site, url):
    with pytest.raises(webhooks.WebhookError, match="not a public address|does not resolve"):
        webhooks.add(site, url, "user_enrolled")
    assert count(site) == 0


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://127.0.0.1/", "ftp://x/", "//x"])
def test_other_schemes_are_refused(site, url):
    with pytest.raises(webhooks.WebhookError, match="must be http:// or https://"):
        webhooks.add(site, url, "user_enrolled")


def test_allowing_loopback_does_not_open_the_private_network(site, monkeypatch):
    monkeypatch.setenv(webhooks.ALLOW_ENV, "127.0.0.0/8")
    webhooks.add(site, "http://127.0.0.1:9/hook", "user_enrolled")
    for url in ("http://10.0.0.5/hook", "http://169.254.169.254/", "http://[::1]/hook"):
        with pytest.raises(webhooks.WebhookError, match="not a public address"):
            webhooks.add(site, url, "user_enrolled")
    assert count(site) == 1


def test_the_address_is_checked_again_at_each_request(site, monkeypatch, clock):
    """An allowance withdrawn (or a name that now resolves elsewhere) stops the requests."""
    course = site.course("C")
    site.instance(course, "manual")
    (user,) = site.users(1)
    site.session.commit()
    monkeypatch.setenv(webhooks.ALLOW_ENV, "127.0.0.0/8")
    webhooks.add(site, "http://127.0.0.1:9/hook", "user_enrolled")
    enrol_manually(site, user, course)
    monkeypatch.delenv(webhooks.ALLOW_ENV)
    assert webhooks.deliver(site).failed == 1
    (failed,) = webhooks.deliveries(site, failed=True)
    assert "not a public address" in failed["last_error"]


class Redirecting(BaseHTTPRequestHandler):
    """A receiver answering 302 towards another local service, and that other service."""

    hits: list[str] = []

    def do_POST(self):
        Redirecting.hits.append(self.path)
        if self.path == "/hook":
            self.send_response(302)
            self.send_header("Location", "/internal-admin")
        else:
            self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_redirects_are_not_followed(site, monkeypatch, clock):
    server = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        course = site.course("C")
        site.instance(course, "manual")
        (user,) = site.users(1)
        site.session.commit()
        monkeypatch.setenv(webhooks.ALLOW_ENV, "127.0.0.0/8")
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        webhooks.add(site, url, "user_enrolled")
        Redirecting.hits = []
        enrol_manually(site, user, course)
        assert webhooks.deliver(site).failed == 1
    finally:
        server.shutdown()
        server.server_close()
    assert Redirecting.hits == ["/hook"]
    (failed,) = webhooks.deliveries(site, failed=True)
    assert "redirects are not followed" in failed["last_error"]


def test_the_secret_is_not_listed(site, monkeypatch):
    monkeypatch.setenv(webhooks.ALLOW_ENV, "127.0.0.0/8")
    _, secret = webhooks.add(site, "http://127.0.0.1:9/hook", "user_enrolled")
    assert secret.startswith("whsec_")
    assert secret not in repr(webhooks.listing(site))
