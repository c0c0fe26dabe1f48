"""Outgoing webhooks against a real HTTP receiver on loopback that verifies every request with
the ``standardwebhooks`` package, as a receiver in the wild would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from enrolkit import webhooks
from enrolkit.engine import Change, Plan
from enrolkit.enrolments import enrol_manually, unenrol_manually
from enrolkit.models import LogEntry, WebhookEvent, WebhookSubscription
from sqlalchemy import func, select
from standardwebhooks import Webhook

ENROLKIT = str(Path(sys.executable).with_name("enrolkit"))


class Receiver:
    """A webhook endpoint: verifies each request's signature, answers from ``answers`` (then
    200), and keeps what it accepted. ``hold`` makes it wait (the request in flight) until set."""

    def __init__(self) -> None:
        self.secret = ""
        self.answers: list[int] = []
        self.requests: list[tuple[str, int, list[dict]]] = []  # (webhook-id, status, events)
        self.invalid: list[str] = []
        self.hold: threading.Event | None = None
        self.arrived = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                try:
                    payload = Webhook(receiver.secret).verify(body, dict(self.headers))
                except Exception as exc:  # a bad signature is what this test must catch
                    receiver.invalid.append(str(exc))
                    self.send_response(400)
                    self.end_headers()
                    return
                receiver.arrived.set()
                if receiver.hold is not None:
                    receiver.hold.wait(20)
                status = receiver.answers.pop(0) if receiver.answers else 200
                receiver.requests.append(
                    (self.headers["webhook-id"], status, payload["data"]["events"])
                )
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def accepted(self) -> list[dict]:
        return [e for _, status, events in self.requests if status == 200 for e in events]


@pytest.fixture
def receiver(monkeypatch):
    monkeypatch.setenv(webhooks.ALLOW_ENV, "127.0.0.0/8")
    receiver = Receiver()
    yield receiver
    if receiver.hold is not None:
        receiver.hold.set()
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def course(db_site, clock):
    db_site.instance(db_site.course("C1"), "manual")
    db_site.session.commit()
    return db_site.course("C2")


def subscribe(site, receiver, events="user_enrolled,user_unenrolled", **filters):
    subscription, secret = webhooks.add(site, receiver.url, events, **filters)
    receiver.secret = secret
    return subscription


def test_events_arrive_signed_in_order_and_in_batches(db_site, course, receiver):
    users = db_site.users(5)
    db_site.session.commit()
    subscribe(db_site, receiver, "user_enrolled,user_unenrolled,role_assigned")
    for user in users:
        enrol_manually(db_site, user, course, role=db_site.role("student"))
    unenrol_manually(db_site, users[0], course)

    result = webhooks.deliver(db_site, batch_size=4)

    assert not receiver.invalid
    assert [len(events) for _, _, events in receiver.requests] == [4, 4, 3]
    types = [(e["type"], e["data"]["username"]) for e in receiver.accepted()]
    expected = []
    for user in users:
        expected += [("user_enrolled", user.username), ("role_assigned", user.username)]
    assert types == expected + [("user_unenrolled", "u1")]
    assert receiver.accepted()[0]["data"]["course"] == "C2"
    assert len({msg for msg, _, _ in receiver.requests}) == 3
    assert result.sent == 3 and result.events == 11
    assert webhooks.deliver(db_site).sent == 0  # nothing twice


def test_a_big_change_queues_every_event_once_and_rolls_back_with_it(db_site, course, receiver):
    """A change of more than COPY_FROM users goes into the outbox in bulk (COPY on
    PostgreSQL): every event arrives once, signed, in order; none for a rolled-back change."""
    count = webhooks.COPY_FROM + 150
    users = db_site.users(count)
    instance = db_site.instance(course, "manual")
    db_site.session.commit()
    subscribe(db_site, receiver, "user_enrolled,role_assigned")
    plan = Plan(instance.id, reason="bulk", changes=[Change(user.id) for user in users])
    with pytest.raises(RuntimeError), db_site.atomic():
        db_site.engine.apply(plan)
        assert db_site.session.scalar(select(func.count()).select_from(WebhookEvent)) == 2 * count
        raise RuntimeError("the change fails after queueing")
    assert db_site.session.scalar(select(func.count()).select_from(WebhookEvent)) == 0

    db_site.engine.apply(plan)
    db_site.session.commit()
    while webhooks.deliver(db_site).sent:
        pass

    assert not receiver.invalid
    events = receiver.accepted()
    enrolled = [e["data"]["username"] for e in events if e["type"] == "user_enrolled"]
    assigned = [e["data"]["username"] for e in events if e["type"] == "role_assigned"]
    assert enrolled == [u.username for u in users] and sorted(assigned) == sorted(enrolled)
    assert {e["data"]["course"] for e in events if e["type"] == "user_enrolled"} == {"C2"}


def test_filters_and_rolled_back_changes_queue_nothing(db_site, course, receiver):
    other = db_site.course("OTHER")
    db_site.instance(other, "manual")
    (user,) = db_site.users(1)
    db_site.session.commit()
    subscribe(db_site, receiver, "user_enrolled", course_id=course.id, method="manual")
    enrol_manually(db_site, user, other)  # another course: not for this subscription
    with pytest.raises(RuntimeError), db_site.atomic():
        enrol_manually(db_site, user, course)
        raise RuntimeError("the change is rolled back")
    assert db_site.session.scalar(select(func.count()).select_from(WebhookEvent)) == 0
    enrol_manually(db_site, user, course)
    webhooks.deliver(db_site)
    assert [e["data"]["course_id"] for e in receiver.accepted()] == [course.id]


def test_a_receiver_failing_twice_gets_each_event_once_after_back_off(
    db_site, course, receiver, clock
):
    users = db_site.users(3)
    db_site.session.commit()
    subscribe(db_site, receiver)
    for user in users:
        enrol_manually(db_site, user, course)
    receiver.answers = [500, 500]

    assert webhooks.deliver(db_site).failed == 1
    assert webhooks.deliver(db_site).sent == 0  # backing off: nothing sent before it is due
    (failed,) = webhooks.deliveries(db_site, failed=True)
    assert failed["last_status"] == 500 and failed["attempts"] == 1
    clock.advance(webhooks.BACKOFF_BASE)
    assert webhooks.deliver(db_site).failed == 1
    clock.advance(2 * webhooks.BACKOFF_BASE)
    assert webhooks.deliver(db_site).sent == 1

    assert [status for _, status, _ in receiver.requests] == [500, 500, 200]
    assert len({msg for msg, _, _ in receiver.requests}) == 1  # one webhook-id throughout
    assert [e["data"]["username"] for e in receiver.accepted()] == ["u1", "u2", "u3"]
    assert webhooks.deliveries(db_site, failed=True) == []


def test_a_day_of_failures_disables_the_subscription_and_enable_resumes(
    db_site, course, receiver, clock
):
    (user,) = db_site.users(1)
    db_site.session.commit()
    subscription = subscribe(db_site, receiver)
    enrol_manually(db_site, user, course)
    receiver.answers = [503] * 100
    first_failure = db_site.now()
    while True:
        failed_at = db_site.now()
        webhooks.deliver(db_site)
        db_site.session.expire_all()
        if db_site.session.get(WebhookSubscription, subscription.id).status != "active":
            break
        assert failed_at - first_failure < webhooks.DISABLE_AFTER  # not disabled early
        clock.advance(webhooks.BACKOFF_MAX)
    # disabled at the first failure a day or more after the first one
    assert webhooks.DISABLE_AFTER <= failed_at - first_failure
    assert failed_at - first_failure < webhooks.DISABLE_AFTER + webhooks.BACKOFF_MAX
    disabled = db_site.session.get(WebhookSubscription, subscription.id)
    assert "HTTP 503" in disabled.disabled_reason
    assert db_site.session.scalar(
        select(func.count()).select_from(LogEntry).where(LogEntry.event == "webhook_disabled")
    )
    receiver.answers = []
    webhooks.set_enabled(db_site, subscription.id, True)
    assert webhooks.deliver(db_site).sent == 1
    assert [e["data"]["username"] for e in receiver.accepted()] == ["u1"]


def test_replay_sends_the_same_message_again(db_site, course, receiver):
    (user,) = db_site.users(1)
    db_site.session.commit()
    subscribe(db_site, receiver)
    enrol_manually(db_site, user, course)
    webhooks.deliver(db_site)
    (delivery,) = webhooks.deliveries(db_site)
    webhooks.replay(db_site, delivery["id"])
    webhooks.deliver(db_site)
    first, second = receiver.requests
    assert first == second and first[0] == delivery["webhook_id"]


def test_cli_manages_subscriptions(cli, site, receiver):
    result = cli("webhook", "add", receiver.url, "--events", "user_enrolled,nope")
    assert result.exit_code == 1 and "unknown webhook event(s) nope" in result.output
    result = cli("webhook", "add", receiver.url, "--events", "user_enrolled", "--course", "NONE")
    assert result.exit_code == 1 and "Traceback" not in result.output
    result = cli("webhook", "add", receiver.url, "--events", "user_enrolled")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("whsec_")
    listing = json.loads(cli("webhook", "list", "--json").output)
    assert listing[0]["url"] == receiver.url and "whsec_" not in json.dumps(listing)
    assert cli("webhook", "disable", "1").exit_code == 0
    assert json.loads(cli("webhook", "list", "--json").output)[0]["status"] == "disabled"
    assert cli("webhook", "remove", "1").exit_code == 0
    result = cli("webhook", "remove", "1")
    assert result.exit_code == 1 and "no webhook with id 1" in result.output
    assert cli("webhook", "deliveries", "--failed").output.strip() == "(none)"


def test_sigkill_during_delivery_loses_nothing_and_repeats_only_the_batch_in_flight(
    any_db, db_site, receiver, clock, tmp_path
):
    course = db_site.course("C")
    db_site.instance(course, "manual")
    users = db_site.users(5)
    db_site.session.commit()
    subscribe(db_site, receiver)
    for user in users:
        enrol_manually(db_site, user, course)
    db_site.session.rollback()
    env = {
        **os.environ,
        "ENROLKIT_DATABASE_URL": any_db,
        "ENROLKIT_HOME": str(tmp_path / "home"),
    }
    receiver.hold = threading.Event()
    sender = subprocess.Popen(
        [ENROLKIT, "webhook", "send", "--batch-size", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert receiver.arrived.wait(30), sender.communicate(timeout=5)
    sender.send_signal(signal.SIGKILL)
    sender.communicate(timeout=10)
    receiver.hold.set()
    time.sleep(0.2)  # the receiver answers the dead sender's request
    killed = receiver.requests[0][0]

    env["ENROLKIT_NOW"] = str(clock.now() + webhooks.LEASE + 1)
    done = subprocess.run(
        [ENROLKIT, "webhook", "send", "--batch-size", "2"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr

    ids = [msg for msg, _, _ in receiver.requests]
    assert ids[:2] == [killed, killed] and len(ids) == 4 and len(set(ids)) == 3
    names = [e["data"]["username"] for _, _, events in receiver.requests[1:] for e in events]
    assert names == ["u1", "u2", "u3", "u4", "u5"]
