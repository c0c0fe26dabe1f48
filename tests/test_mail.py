"""The mail outbox and its delivery, against a real SMTP server (aiosmtpd) started on loopback."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import ssl
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from email import message_from_bytes, policy
from types import SimpleNamespace

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from enrolkit import mail
from enrolkit.builtin import mail_delivery
from enrolkit.models import MailMessage
from sqlalchemy import event, select


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Recorder:
    """An aiosmtpd handler keeping every accepted envelope; it refuses some recipients for good
    (550) and defers others (450)."""

    def __init__(self, refuse=(), defer=()):
        self.envelopes = []
        self.sessions = []
        self.encrypted = []
        self.refuse = set(refuse)
        self.defer = set(defer)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refuse:
            return "550 5.1.1 no such user"
        if address in self.defer:
            return "450 4.2.1 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.envelopes.append(envelope)
        self.sessions.append(session)
        self.encrypted.append(server.transport.get_extra_info("ssl_object") is not None)
        return "250 OK"


@pytest.fixture
def smtp_server():
    """Start an SMTP server on a free loopback port: ``smtp_server(handler, **smtp_options)``."""
    started = []

    def start(handler: Recorder, **options) -> Controller:
        controller = Controller(
            handler, hostname="127.0.0.1", port=free_port(), server_hostname="mail.test", **options
        )
        controller.start()
        started.append(controller)
        return controller

    yield start
    for controller in started:
        controller.stop()


def parsed(envelope):
    return message_from_bytes(envelope.original_content, policy=policy.default)


def outbox(site) -> list[dict]:
    """The outbox rows, oldest first; ends the read transaction so other connections can write."""
    rows = site.session.execute(select(MailMessage).order_by(MailMessage.id)).scalars().all()
    found = [
        {
            "to": m.to,
            "subject": m.subject,
            "status": m.status,
            "attempts": m.attempts,
            "next_attempt": m.next_attempt,
            "last_error": m.last_error,
            "sent": m.sent,
            "body": m.body,
            "html": m.html,
            "template": m.template,
            "variables": m.variables,
        }
        for m in rows
    ]
    site.session.rollback()
    return found


def test_delivers_text_and_html_parts_to_the_server(db_site, smtp_server, clock):
    handler = Recorder()
    server = smtp_server(handler)
    with db_site.atomic():
        assert mail.queue(
            db_site,
            to="jean@example.org",
            subject="Welcome to\nBiology 101",
            body="Hello Jean, you are enrolled.",
            html="<p>Hello <b>Jean</b>, you are enrolled.</p>",
            key="welcome:1",
        )
        assert mail.queue(db_site, to="ana@example.org", subject="Plain", body="Just text.")

    url = f"smtp://127.0.0.1:{server.port}?from=noreply@school.example"
    result = mail.deliver(db_site, url)

    assert (result.sent, result.retrying, result.failed, result.queued) == (2, 0, 0, 0)
    first, second = handler.envelopes
    assert first.mail_from == "noreply@school.example"
    assert first.rcpt_tos == ["jean@example.org"]
    message = parsed(first)
    assert message["Subject"] == "Welcome to Biology 101"
    assert message["To"] == "jean@example.org"
    assert message.get_body(("plain",)).get_content().strip() == "Hello Jean, you are enrolled."
    assert "<b>Jean</b>" in message.get_body(("html",)).get_content()
    plain = parsed(second)
    assert plain.get_content_type() == "text/plain"
    assert plain.get_content().strip() == "Just text."
    assert [(m["status"], m["attempts"], m["sent"]) for m in outbox(db_site)] == [
        ("sent", 1, clock.now()),
        ("sent", 1, clock.now()),
    ]
    # Sent mail is not sent again.
    assert mail.deliver(db_site, url).sent == 0
    assert len(handler.envelopes) == 2


def test_a_key_queues_its_message_once(db_site, smtp_server):
    handler = Recorder()
    server = smtp_server(handler)
    key = "welcome:instance:12:user:5:enrolment:1788220800"
    with db_site.atomic():
        assert mail.queue(db_site, to="jean@example.org", subject="Hi", body="1", key=key)
        assert not mail.queue(db_site, to="jean@example.org", subject="Hi", body="2", key=key)
    with db_site.atomic():  # a later run reaching the same change
        assert not mail.queue(db_site, to="jean@example.org", subject="Hi", body="3", key=key)

    assert mail.deliver(db_site, f"smtp://127.0.0.1:{server.port}").sent == 1
    assert len(handler.envelopes) == 1
    assert parsed(handler.envelopes[0]).get_content().strip() == "1"


def test_a_template_message_is_rendered_by_the_delivery_task_once(db_site, monkeypatch):
    """Queued with its variables in the caller's transaction, rendered (and readable) after
    the delivery task's run even without SMTP; its key dedupes as a plain message's does."""
    monkeypatch.delenv(mail.SMTP_URL_ENV, raising=False)
    key = "welcome:instance:3:user:7"
    variables = {"user": SimpleNamespace(firstname="Jean"), "items": ["a", "b"]}
    with db_site.atomic():
        assert mail.queue_template(db_site, to="jean@example.org", subject="Welcome",
                                   template="Hi {{ user.firstname }} {{ items|join }}",
                                   variables=variables, key=key)  # fmt: skip
        assert not mail.queue_template(db_site, to="jean@example.org", subject="Welcome",
                                       template="other", variables={}, key=key)  # fmt: skip
    [queued] = outbox(db_site)
    assert (queued["body"], queued["status"]) == ("", mail.QUEUED)
    assert "SMTP not configured" in mail_delivery.run(db_site)  # it rendered all the same
    [rendered] = outbox(db_site)
    assert (rendered["body"], rendered["template"], rendered["variables"]) == (
        "Hi Jean ab",
        None,
        None,
    )
    assert rendered["html"] == "<p>Hi Jean ab</p>\n" and rendered["status"] == mail.QUEUED


def test_mail_queued_in_a_rolled_back_transaction_does_not_exist(site):
    with pytest.raises(RuntimeError), site.atomic():
        mail.queue(site, to="jean@example.org", subject="Hi", body="x", key="k")
        raise RuntimeError("the enrolment failed")
    assert outbox(site) == []
    with site.atomic():
        assert mail.queue(site, to="jean@example.org", subject="Hi", body="x", key="k")
    assert len(outbox(site)) == 1


@pytest.mark.parametrize(
    "to", ["", "not-an-address", "a@example.org, b@example.org", "a@x\nBcc: b@x"]
)
def test_queue_refuses_what_is_not_one_address(site, to):
    with pytest.raises(mail.MailError, match="not a single email address"):
        mail.queue(site, to=to, subject="Hi", body="x")


def test_without_smtp_mail_stays_queued_and_readable(site, cli, clock, monkeypatch):
    monkeypatch.delenv(mail.SMTP_URL_ENV, raising=False)
    with site.atomic():
        mail.queue(site, to="jean@example.org", subject="Welcome", body="Hello Jean")

    result = mail.deliver(site)
    assert not result.configured
    assert result.queued == 1
    assert "ENROLKIT_SMTP_URL" in mail_delivery.run(site)

    listed = cli("mail", "list", "--json")
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.output)
    assert row["to"] == "jean@example.org"
    assert row["subject"] == "Welcome"
    assert row["body"] == "Hello Jean"
    assert row["status"] == "queued"
    assert row["created"] == clock.now()
    assert json.loads(cli("mail", "list", "--json", "--status", "sent").output) == []
    table = cli("mail", "list")
    assert "jean@example.org" in table.output and "2026-09-01 08:00" in table.output

    sent = cli("mail", "send")
    assert sent.exit_code == 1
    assert "SMTP not configured" in sent.output


def test_unreachable_server_backs_off_then_gives_up(site, clock):
    url = f"smtp://127.0.0.1:{free_port()}"  # nothing listens there
    with site.atomic():
        mail.queue(site, to="jean@example.org", subject="Hi", body="x")

    for attempt in range(1, mail.MAX_ATTEMPTS):
        result = mail.deliver(site, url)
        assert result.retrying == 1
        (row,) = outbox(site)
        assert row["status"] == "queued"
        assert row["attempts"] == attempt
        assert "ConnectionRefusedError" in row["last_error"]
        assert row["next_attempt"] == clock.now() + 60 * 2 ** (attempt - 1)
        # Not due yet: a run just before the retry time leaves it alone.
        clock.set(row["next_attempt"] - 1)
        assert mail.deliver(site, url).retrying == 0
        assert outbox(site)[0]["attempts"] == attempt
        clock.advance(1)

    result = mail.deliver(site, url)
    assert (result.failed, result.queued) == (1, 0)
    (row,) = outbox(site)
    assert (row["status"], row["attempts"]) == ("failed", mail.MAX_ATTEMPTS)
    clock.advance(86400)
    assert mail.deliver(site, url).failed == 0


def test_refused_recipient_fails_at_once_deferred_one_retries(site, smtp_server):
    handler = Recorder(refuse={"ghost@example.org"}, defer={"busy@example.org"})
    server = smtp_server(handler)
    with site.atomic():
        for to in ("ghost@example.org", "busy@example.org", "jean@example.org"):
            mail.queue(site, to=to, subject="Hi", body="x")

    result = mail.deliver(site, f"smtp://127.0.0.1:{server.port}")

    assert (result.sent, result.retrying, result.failed) == (1, 1, 1)
    ghost, busy, jean = outbox(site)
    assert ghost["status"] == "failed" and "550" in ghost["last_error"]
    assert busy["status"] == "queued" and "450" in busy["last_error"]
    assert jean["status"] == "sent"
    assert [e.rcpt_tos for e in handler.envelopes] == [["jean@example.org"]]


def test_smtp_auth_with_credentials_from_the_url(site, smtp_server, caplog):
    password = "p@ss:w/rd%"

    def authenticator(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"mailer@school" and auth_data.password == password.encode()
        return AuthResult(success=ok, handled=False)  # handled=False: the server replies 535

    handler = Recorder()
    # AUTH over plain TCP is only for this loopback test; the server then offers it without TLS.
    server = smtp_server(handler, authenticator=authenticator, auth_require_tls=False)
    host = f"127.0.0.1:{server.port}"
    with site.atomic():
        mail.queue(site, to="jean@example.org", subject="Hi", body="x")

    assert mail.deliver(site, f"smtp://mailer%40school:p%40ss%3Aw%2Frd%25@{host}").sent == 1
    assert handler.sessions[0].authenticated

    with site.atomic():
        mail.queue(site, to="ana@example.org", subject="Hi", body="y")
    caplog.set_level(logging.DEBUG)
    wrong = "wr0ng-s3cret"
    result = mail.deliver(site, f"smtp://mailer%40school:{wrong}@{host}")
    assert result.retrying == 1
    row = outbox(site)[1]
    assert "535" in row["last_error"]
    for text in (caplog.text, row["last_error"], str(result)):
        assert wrong not in text and password not in text


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory):
    """A certificate for 127.0.0.1 made by the system's openssl (no Python dependency)."""
    openssl = shutil.which("openssl")
    if not openssl:
        pytest.skip("openssl is not installed: no certificate for the TLS tests")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return cert, context


def test_starttls_and_implicit_tls(site, smtp_server, self_signed, monkeypatch):
    cert, server_context = self_signed
    handler = Recorder()
    starttls = smtp_server(handler, tls_context=server_context, require_starttls=True)
    implicit = smtp_server(handler, ssl_context=server_context)
    with site.atomic():
        mail.queue(site, to="jean@example.org", subject="Hi", body="x")

    # The certificate is not trusted yet: nothing is sent in clear instead.
    result = mail.deliver(site, f"smtp://127.0.0.1:{starttls.port}")
    assert result.retrying == 1
    assert "CERTIFICATE_VERIFY_FAILED" in outbox(site)[0]["last_error"]

    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    with site.atomic():
        mail.queue(site, to="ana@example.org", subject="Hi", body="y")
    # The server refuses MAIL before STARTTLS, so delivery proves TLS was negotiated.
    assert mail.deliver(site, f"smtp://127.0.0.1:{starttls.port}").sent == 1
    with site.atomic():
        mail.queue(site, to="eve@example.org", subject="Hi", body="z")
    assert mail.deliver(site, f"smtps://127.0.0.1:{implicit.port}").sent == 1
    assert [e.rcpt_tos for e in handler.envelopes] == [["ana@example.org"], ["eve@example.org"]]
    assert handler.encrypted == [True, True]


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("http://mail.example.org", "must start with smtp:// or smtps://"),
        ("smtp://", "names no host"),
        ("smtp://user:sekrit@mail.example.org:twentyfive", "bad port for host mail.example.org"),
        ("smtp://mail.example.org?form=a@b", "unknown option(s) form"),
        ("smtp://mail.example.org?from=nobody", "is not an email address"),
        ("smtp://mail.example.org?timeout=0", "timeout must be a positive number"),
    ],
)
def test_a_bad_smtp_url_is_a_clear_error(site, url, complaint):
    with pytest.raises(mail.MailError) as raised:
        mail.deliver(site, url)
    assert complaint in str(raised.value)
    assert "sekrit" not in str(raised.value)


def test_deliver_mail_is_a_core_task_every_minute(site, cli, smtp_server, monkeypatch):
    task = site.plugins.tasks["deliver_mail"]
    assert (task.schedule, task.component) == ("* * * * *", "core")
    handler = Recorder()
    server = smtp_server(handler)
    monkeypatch.setenv(mail.SMTP_URL_ENV, f"smtp://127.0.0.1:{server.port}")
    with site.atomic():
        mail.queue(site, to="jean@example.org", subject="One", body="x")
    assert task.run(site.site) == "sent 1, retrying 0, failed 0; 0 queued"

    with site.atomic():
        mail.queue(site, to="ana@example.org", subject="Two", body="y")
    sent = cli("mail", "send")
    assert sent.exit_code == 0, sent.output
    assert "sent 1" in sent.output
    assert [parsed(e)["Subject"] for e in handler.envelopes] == ["One", "Two"]


def test_a_parallel_run_never_sends_a_claimed_message_twice(any_db, make_runtime, smtp_server):
    """``enrolkit mail send`` during a cron run, in the worst order: run A looks up the due mail,
    run B claims it, then A tries to claim it while B is still sending. Statement hooks force
    that order, so the test is deterministic."""
    if any_db.startswith("sqlite"):
        pytest.skip("SQLite runs one writing transaction at a time: the runs cannot interleave")
    handler = Recorder()
    server = smtp_server(handler)
    url = f"smtp://127.0.0.1:{server.port}"
    runtime = make_runtime(url=any_db)
    with runtime.site() as site, site.atomic():
        for i in range(3):
            mail.queue(site, to=f"u{i}@example.org", subject=f"#{i}", body="x")
    a_looked, b_claimed, a_done = threading.Event(), threading.Event(), threading.Event()
    run_a = threading.current_thread()

    @event.listens_for(runtime.db, "after_cursor_execute")
    def a_pauses_after_looking(conn, cursor, statement, parameters, context, executemany):
        if (
            threading.current_thread() is run_a
            and "ORDER BY" in statement
            and not a_looked.is_set()
        ):
            a_looked.set()
            b_claimed.wait(10)

    @event.listens_for(runtime.db, "before_cursor_execute")
    def b_pauses_before_recording(conn, cursor, statement, parameters, context, executemany):
        if threading.current_thread() is not run_a and "SET status" in statement:
            b_claimed.set()
            a_done.wait(10)

    def run_b():
        a_looked.wait(10)
        with runtime.site(origin="cron") as other:
            return mail.deliver(other, url)

    with ThreadPoolExecutor(1) as pool:
        b = pool.submit(run_b)
        with runtime.site() as site:
            a = mail.deliver(site, url)
        a_done.set()
        b = b.result()

    assert b_claimed.is_set()
    assert (a.sent, b.sent) == (0, 3)
    assert sorted(e.rcpt_tos[0] for e in handler.envelopes) == [
        "u0@example.org",
        "u1@example.org",
        "u2@example.org",
    ]
