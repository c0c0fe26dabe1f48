"""Outgoing webhooks, signed to the Standard Webhooks specification (standardwebhooks.com).

A subscription names a URL, the events it wants and optionally one course or one method. The
change hooks queue one row per matching event in ``webhook_events`` inside the transaction of the
change (an outbox, like mail): an event exists only if its change was committed.

The ``deliver_webhooks`` task (or ``enrolkit webhook send``) sends them in order per subscription,
up to ``BATCH_SIZE`` events per request. A batch becomes a *delivery* with a fixed ``webhook-id``
and body before anything is sent, so a retry, a replay, or a run killed mid-request sends exactly
the same message again and receivers can deduplicate on ``webhook-id``. A subscription's next
batch waits until its current one is accepted (any 2xx): order is kept.

A failed request is retried after ``BACKOFF_BASE * 2**(attempts-1)`` seconds, at most
``BACKOFF_MAX``; a subscription whose requests have failed for ``DISABLE_AFTER`` seconds is
disabled (``enrolkit webhook enable`` resumes it where it stopped).

Requests go only to public addresses: a URL whose host resolves to a loopback, private,
link-local (cloud metadata), shared, multicast or reserved address is refused, when the
subscription is made and again at each request, whose connection goes to the address that was
checked (no second lookup for a rebinding DNS to answer). ``ENROLKIT_WEBHOOK_ALLOW`` lists
networks the operator allows anyway (``127.0.0.0/8,::1``). Redirects are not followed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import ipaddress
import json
import logging
import os
import secrets
import socket
import ssl
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select, update

from .bulk import insert_rows
from .changes import EnrolmentChanges, RoleChange
from .clock import iso
from .errors import EnrolkitError, NotFound
from .integrations import (  # noqa: F401  (EVENTS and the event names: webhooks.EVENTS, ...)
    ASSIGNED,
    BATCH_SIZE,
    ENROLLED,
    EVENTS,
    UNASSIGNED,
    UNENROLLED,
    UPDATED,
)
from .log import record
from .models import COURSE, Course, User, WebhookDelivery, WebhookEvent, WebhookSubscription
from .site import Site
from .texts import Text

log = logging.getLogger(__name__)

ACTIVE, DISABLED = "active", "disabled"
PENDING, DELIVERED = "pending", "delivered"

ALLOW_ENV = "ENROLKIT_WEBHOOK_ALLOW"
SECRET_PREFIX = "whsec_"
BACKOFF_BASE = 60
BACKOFF_MAX = 3600
DISABLE_AFTER = 86400
TIMEOUT = 10.0
#: Key of the active subscriptions in :meth:`Site.memo`: read once per transaction, not per plan.
ACTIVE_MEMO = ("webhooks", "active")
#: How long a delivery run owns the batch it is sending (more than ``TIMEOUT``).
LEASE = 60
URL_LENGTH = 2000
#: Batches one run sends per subscription at most, so one busy receiver cannot starve the rest.
RUN_BATCHES = 50
#: Events from which PostgreSQL gets them by COPY rather than INSERT.
COPY_FROM = 1000


class WebhookError(EnrolkitError):
    """A subscription that cannot be made or used (bad URL, refused address, unknown event)."""


# --- where requests may go --------------------------------------------------------------------


def allowed_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The non-public networks the operator allows (``ENROLKIT_WEBHOOK_ALLOW``)."""
    networks = []
    for item in os.environ.get(ALLOW_ENV, "").split(","):
        if item.strip():
            try:
                networks.append(ipaddress.ip_network(item.strip(), strict=False))
            except ValueError:
                raise WebhookError(
                    f"{ALLOW_ENV}: {item.strip()!r} is not a network; use CIDR such as 127.0.0.0/8"
                ) from None
    return networks


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (the address that passed the check) and what to ask."""

    scheme: str
    host: str
    port: int
    address: str
    path: str


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def check_url(url: str) -> Target:
    """Parse ``url`` and resolve its host; refuse it unless every address is allowed."""
    if not url or len(url) > URL_LENGTH:
        raise WebhookError(f"a webhook URL has 1 to {URL_LENGTH} characters")
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookError(f"webhook URL {url!r} must be http:// or https:// with a host")
    if parts.username or parts.password:
        raise WebhookError(
            "a webhook URL must not carry a user or password; the signature is the proof"
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise WebhookError(f"webhook URL {url!r} has a bad port") from None
    try:
        infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise WebhookError(f"webhook host {parts.hostname!r} does not resolve") from None
    allowed = allowed_networks()
    addresses = []
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if not _public(address) and not any(address in net for net in allowed):
            raise WebhookError(
                f"webhook host {parts.hostname!r} resolves to {address}, which is not a public "
                f"address; refused (an operator may allow it in {ALLOW_ENV})"
            )
        addresses.append(str(address))
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, parts.hostname, port, addresses[0], path)


# --- subscriptions ----------------------------------------------------------------------------


def parse_events(events: str | Iterable[str]) -> list[str]:
    names = events.split(",") if isinstance(events, str) else list(events)
    names = [n.strip() for n in names if n.strip()]
    unknown = [n for n in names if n not in EVENTS]
    if unknown or not names:
        raise WebhookError(
            f"unknown webhook event(s) {', '.join(unknown) or '(none given)'}; "
            f"known: {', '.join(EVENTS)}"
        )
    return list(dict.fromkeys(names))


def make_secret() -> str:
    """A ``whsec_`` secret: 32 random bytes, base64 (the Standard Webhooks form)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def add(
    site: Site,
    url: str,
    events: str | Iterable[str],
    *,
    course_id: int | None = None,
    method: str = "",
) -> tuple[WebhookSubscription, str]:
    """Make a subscription; return it and its secret (shown to the caller this once)."""
    names = parse_events(events)
    check_url(url)
    if course_id is not None and site.session.get(Course, course_id) is None:
        raise NotFound(f"no course with id {course_id}")
    if method:
        site.plugins.method(method)  # raises NotFound naming the known methods
    secret = make_secret()
    with site.atomic():
        subscription = WebhookSubscription(
            url=url.strip(),
            events=",".join(names),
            course_id=course_id,
            method=method,
            secret=secret,
            status=ACTIVE,
            created=site.now(),
        )
        site.session.add(subscription)
        site.session.flush()
        site.forget(ACTIVE_MEMO)
        record(site, "webhook_added", "core", course_id=course_id, reason=_describe(subscription))
    return subscription, secret


def _describe(subscription: WebhookSubscription) -> str:
    host = urlsplit(subscription.url).hostname
    return f"webhook {subscription.id} to {host}: {subscription.events}"


def get(site: Site, subscription_id: int) -> WebhookSubscription:
    subscription = site.session.get(WebhookSubscription, subscription_id)
    if subscription is None:
        raise NotFound(f"no webhook with id {subscription_id}; see enrolkit webhook list")
    return subscription


def listing(site: Site) -> list[dict]:
    """Every subscription with its backlog (events not yet accepted), when a batch was last
    accepted, and the failed attempts since (with the last error). Never the secret."""
    waiting = dict(
        site.session.execute(
            select(WebhookEvent.subscription_id, func.count())
            .outerjoin(WebhookDelivery, WebhookDelivery.id == WebhookEvent.delivery_id)
            .where((WebhookEvent.delivery_id.is_(None)) | (WebhookDelivery.status == PENDING))
            .group_by(WebhookEvent.subscription_id)
        ).all()
    )
    last_delivered = dict(
        site.session.execute(
            select(WebhookDelivery.subscription_id, func.max(WebhookDelivery.delivered))
            .where(WebhookDelivery.status == DELIVERED)
            .group_by(WebhookDelivery.subscription_id)
        ).all()
    )
    # Order is kept, so a subscription has at most one failing batch: the oldest pending one.
    failing = {
        subscription_id: (attempts, error)
        for subscription_id, attempts, error in site.session.execute(
            select(
                WebhookDelivery.subscription_id,
                WebhookDelivery.attempts,
                WebhookDelivery.last_error,
            )
            .where(WebhookDelivery.status == PENDING, WebhookDelivery.attempts > 0)
            .order_by(WebhookDelivery.id.desc())
        ).all()
    }
    return [
        row(s)
        | {
            "waiting": waiting.get(s.id, 0),
            "last_delivered": last_delivered.get(s.id) or 0,
            "failures": failing.get(s.id, (0, ""))[0],
            "last_error": failing.get(s.id, (0, ""))[1],
        }
        for s in site.session.scalars(select(WebhookSubscription).order_by(WebhookSubscription.id))
    ]


def disabled_after_failures(site: Site) -> list[WebhookSubscription]:
    """The subscriptions the delivery task disabled after ``DISABLE_AFTER`` seconds of failures
    (not those a person disabled): their receivers need fixing, and the admin home says so."""
    return list(
        site.session.scalars(
            select(WebhookSubscription)
            .where(WebhookSubscription.status == DISABLED, WebhookSubscription.failing_since > 0)
            .order_by(WebhookSubscription.id)
        )
    )


def row(subscription: WebhookSubscription) -> dict:
    return {
        "id": subscription.id,
        "url": subscription.url,
        "events": subscription.events.split(","),
        "course_id": subscription.course_id,
        "method": subscription.method,
        "status": subscription.status,
        "disabled_reason": subscription.disabled_reason,
        "failing_since": subscription.failing_since,
        "created": subscription.created,
    }


def set_enabled(site: Site, subscription_id: int, enabled: bool) -> WebhookSubscription:
    """Disable a subscription (events stop being queued), or enable it again where it stopped."""
    with site.atomic():
        subscription = get(site, subscription_id)
        subscription.status = ACTIVE if enabled else DISABLED
        subscription.disabled_reason = "" if enabled else "disabled by an administrator"
        subscription.failing_since = 0
        site.forget(ACTIVE_MEMO)
        if enabled:  # the waiting batch goes first, now
            site.session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.subscription_id == subscription_id,
                    WebhookDelivery.status == PENDING,
                )
                .values(next_attempt=site.now())
            )
        record(
            site,
            "webhook_enabled" if enabled else "webhook_disabled",
            "core",
            reason=_describe(subscription),
        )
    return subscription


def remove(site: Site, subscription_id: int) -> None:
    """Delete a subscription with its queued events and its deliveries."""
    with site.atomic():
        subscription = get(site, subscription_id)
        reason = _describe(subscription)
        for model in (WebhookEvent, WebhookDelivery):
            site.session.execute(delete(model).where(model.subscription_id == subscription_id))
        site.session.delete(subscription)
        site.forget(ACTIVE_MEMO)
        record(site, "webhook_removed", "core", reason=reason)


def deliveries(
    site: Site, subscription_id: int | None = None, *, failed: bool = False, limit: int = 100
) -> list[dict]:
    """Deliveries, newest first; ``failed``: those not accepted whose last attempt failed."""
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
    if subscription_id is not None:
        query = query.where(WebhookDelivery.subscription_id == subscription_id)
    if failed:
        query = query.where(WebhookDelivery.status == PENDING, WebhookDelivery.attempts > 0)
    return [
        {
            "id": d.id,
            "subscription_id": d.subscription_id,
            "webhook_id": d.msg_id,
            "events": d.events,
            "status": d.status,
            "attempts": d.attempts,
            "last_status": d.last_status,
            "last_error": d.last_error,
            "created": d.created,
            "next_attempt": d.next_attempt if d.status == PENDING else 0,
            "delivered": d.delivered,
        }
        for d in site.session.scalars(query)
    ]


def replay(site: Site, delivery_id: int) -> None:
    """Send a delivery again, same ``webhook-id`` and body, at the next run. It goes before the
    subscription's later batches, so order stays as it was."""
    with site.atomic():
        delivery = site.session.get(WebhookDelivery, delivery_id)
        if delivery is None:
            raise NotFound(
                f"no webhook delivery with id {delivery_id}; see enrolkit webhook deliveries"
            )
        delivery.status = PENDING
        delivery.attempts = 0
        delivery.next_attempt = site.now()
        delivery.last_error = ""
        record(
            site, "webhook_replayed", "core", reason=f"delivery {delivery.id} ({delivery.msg_id})"
        )


# --- queueing (inside the change's transaction) ----------------------------------------------


def _subscribers(
    active: list[WebhookSubscription], event: str, course_id: int | None, method: str
) -> list[int]:
    return [
        s.id
        for s in active
        if event in s.events.split(",")
        and (s.course_id is None or s.course_id == course_id)
        and (not s.method or s.method == method)
    ]


def _active(site: Site) -> list[WebhookSubscription]:
    return site.memo(
        ACTIVE_MEMO,
        lambda: list(
            site.session.scalars(
                select(WebhookSubscription).where(WebhookSubscription.status == ACTIVE)
            )
        ),
    )


def queue_enrolment_changes(site: Site, changes: Sequence[EnrolmentChanges]) -> int:
    """Queue the events of one applied batch of plans (a record per instance) for every
    subscription that wants them: one write for the whole batch."""
    active = _active(site)
    if not active:
        return 0
    courses = dict(
        site.session.execute(
            select(Course.id, Course.shortname).where(
                Course.id.in_({change.course_id for change in changes})
            )
        ).all()
    )
    rows: list[tuple] = []
    for change in changes:
        shared = {
            "course_id": change.course_id,
            "course": courses.get(change.course_id),
            "instance_id": change.instance_id,
            "method": change.method,
            "origin": change.origin,
            "reason": change.reason,
        }
        kinds = (
            (ENROLLED, change.enrolled, {}),
            (UPDATED, change.updated, {"suspended": False}),
            (UPDATED, change.suspended, {"suspended": True}),
            (UNENROLLED, change.unenrolled, {}),
        )
        for event, user_ids, extra in kinds:
            targets = _subscribers(active, event, change.course_id, change.method)
            if targets and user_ids:
                rows.extend(_rows(site, targets, event, shared | extra, user_ids))
    return _write(site, rows)


def queue_role_changes(site: Site, changes: Sequence[RoleChange]) -> int:
    """Queue role assigned/unassigned events; a course-level role carries its course."""
    active = _active(site)
    if not active:
        return 0
    batches: dict[tuple, list[int]] = {}
    for change in changes:
        key = (
            ASSIGNED if change.added else UNASSIGNED,
            change.role_id,
            change.contextlevel,
            change.instanceid,
            change.component,
            change.itemid,
        )
        batches.setdefault(key, []).append(change.user_id)
    queued = 0
    for (event, role_id, contextlevel, instanceid, component, itemid), user_ids in batches.items():
        course_id = instanceid if contextlevel == COURSE else None
        targets = _subscribers(active, event, course_id, component.removeprefix("enrol_"))
        if targets:
            shared = {
                "role_id": role_id,
                "contextlevel": contextlevel,
                "instanceid": instanceid,
                "course_id": course_id,
                "component": component,
                "itemid": itemid,
                "origin": site.origin,
            }
            queued += _insert(site, targets, event, shared, user_ids)
    return queued


def _insert(
    site: Site, targets: list[int], event: str, shared: dict, user_ids: Sequence[int]
) -> int:
    """Queue one event per user and subscription."""
    return _write(site, _rows(site, targets, event, shared, user_ids))


def _rows(
    site: Site, targets: list[int], event: str, shared: dict, user_ids: Sequence[int]
) -> list[tuple]:
    """The outbox rows of one event per user and subscription. Only the user id differs
    between them, so the JSON is formatted once: a 100,000-member sync queues 200,000 events,
    and per-row work would double its time. The username is added when the batch is made
    (:func:`_make_batch`)."""
    now = site.now()
    head = json.dumps({"type": event, "timestamp": iso(now)})[:-1] + ', "data": {"user_id": '
    rest = json.dumps(shared)[1:-1]
    tail = (", " + rest if rest else "") + "}}"
    return [
        (target, event, f"{head}{int(uid)}{tail}", now) for target in targets for uid in user_ids
    ]


def _write(site: Site, rows: list[tuple]) -> int:
    """Outbox rows in one bulk load (COPY for many on PostgreSQL: a third of executemany's time)."""
    columns = ("subscription_id", "event", "payload", "created")
    insert_rows(site.session, "webhook_events", columns, rows, copy_from=COPY_FROM)
    return len(rows)


# --- signing ----------------------------------------------------------------------------------


def sign(secret: str, msg_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header: ``v1,`` + base64 HMAC-SHA256 of ``id.timestamp.body``
    keyed with the secret's bytes (the base64 after ``whsec_``)."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    content = f"{msg_id}.{timestamp}.{body}".encode()
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


# --- delivery ---------------------------------------------------------------------------------


@dataclass
class DeliveryResult:
    """What one run did; ``str()`` is the one-line summary the task records."""

    sent: int = 0
    events: int = 0
    failed: int = 0
    disabled: int = 0

    def __str__(self) -> Text:
        """A :class:`Text` (``str()`` keeps it): the tasks page shows it translated."""
        text = Text(
            "delivered %(sent)d batch(es) (%(events)d events), %(failed)d failed",
            sent=self.sent,
            events=self.events,
            failed=self.failed,
        )
        if not self.disabled:
            return text
        return Text.join(", ", [text, Text("%(count)d webhook(s) disabled", count=self.disabled)])


@dataclass(frozen=True)
class _Claimed:
    url: str
    secret: str
    id: int
    msg_id: str
    body: str
    events: int
    attempts: int


def deliver(site: Site, *, batch_size: int = BATCH_SIZE) -> DeliveryResult:
    """Send every active subscription's due batches, oldest first. Commits as it goes (the batch
    and its claim, then the outcome), so no lock is held while a receiver is talked to."""
    result = DeliveryResult()
    with site.atomic():
        ids = site.session.scalars(
            select(WebhookSubscription.id)
            .where(WebhookSubscription.status == ACTIVE)
            .order_by(WebhookSubscription.id)
        ).all()
    for subscription_id in ids:
        for _ in range(RUN_BATCHES):
            claimed = _claim(site, subscription_id, batch_size)
            if claimed is None:
                break
            status, error = _send(claimed)
            if not error:
                _record_sent(site, subscription_id, claimed, status)
                result.sent += 1
                result.events += claimed.events
                continue
            result.failed += 1
            if _record_failure(site, subscription_id, claimed, status, error):
                result.disabled += 1
            break
    if result.sent or result.failed:
        log.info("webhook delivery: %s", result)
    return result


def _claim(site: Site, subscription_id: int, batch_size: int) -> _Claimed | None:
    """The subscription's oldest unaccepted batch, made from its waiting events if there is
    none, claimed for ``LEASE`` seconds; None when nothing is due."""
    now = site.now()
    with site.atomic():
        delivery = site.session.scalar(
            select(WebhookDelivery)
            .where(
                WebhookDelivery.subscription_id == subscription_id,
                WebhookDelivery.status == PENDING,
            )
            .order_by(WebhookDelivery.id)
            .limit(1)
        )
        if delivery is None:
            delivery = _make_batch(site, subscription_id, batch_size)
            if delivery is None:
                return None
        if delivery.next_attempt > now:  # backing off, or another run is sending it
            return None
        taken = site.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery.id,
                WebhookDelivery.status == PENDING,
                WebhookDelivery.next_attempt == delivery.next_attempt,
            )
            .values(next_attempt=now + LEASE)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:
            return None
        subscription = site.session.get(WebhookSubscription, subscription_id)
        return _Claimed(
            subscription.url,
            subscription.secret,
            delivery.id,
            delivery.msg_id,
            delivery.body,
            delivery.events,
            delivery.attempts,
        )


def _make_batch(site: Site, subscription_id: int, batch_size: int) -> WebhookDelivery | None:
    rows = site.session.execute(
        select(WebhookEvent.id, WebhookEvent.payload)
        .where(WebhookEvent.subscription_id == subscription_id, WebhookEvent.delivery_id.is_(None))
        .order_by(WebhookEvent.id)
        .limit(batch_size)
    ).all()
    if not rows:
        return None
    now = site.now()
    events = [json.loads(payload) | {"id": f"evt_{event_id}"} for event_id, payload in rows]
    names = dict(
        site.session.execute(
            select(User.id, User.username).where(
                User.id.in_({e["data"]["user_id"] for e in events})
            )
        ).all()
    )
    for event in events:
        event["data"]["username"] = names.get(event["data"]["user_id"])
    body = json.dumps(
        {"type": "enrolkit.events", "timestamp": iso(now), "data": {"events": events}},
        separators=(",", ":"),
    )
    delivery = WebhookDelivery(
        subscription_id=subscription_id,
        msg_id="msg_" + secrets.token_urlsafe(18),
        body=body,
        events=len(rows),
        status=PENDING,
        attempts=0,
        next_attempt=now,
        created=now,
    )
    site.session.add(delivery)
    site.session.flush()
    ids = [event_id for event_id, _ in rows]
    site.session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.id.in_(ids), WebhookEvent.delivery_id.is_(None))
        .values(delivery_id=delivery.id)
        .execution_options(synchronize_session=False)
    )
    return delivery


def _send(claimed: _Claimed) -> tuple[int, str]:
    """POST one batch; return (HTTP status, error text: empty when accepted)."""
    try:
        target = check_url(claimed.url)
    except WebhookError as exc:
        return 0, str(exc)
    timestamp = int(time.time())  # the real time: receivers reject stale timestamps
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "enrolkit-webhooks",
        "webhook-id": claimed.msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(claimed.secret, claimed.msg_id, timestamp, claimed.body),
    }
    conn = _connection(target)
    try:
        conn.request("POST", target.path, body=claimed.body.encode(), headers=headers)
        response = conn.getresponse()
        response.read(65536)
    except (OSError, http.client.HTTPException) as exc:
        return 0, f"{target.host}: {type(exc).__name__}: {exc}"[:500]
    finally:
        conn.close()
    if 200 <= response.status < 300:
        return response.status, ""
    if 300 <= response.status < 400:
        return response.status, f"HTTP {response.status}: redirects are not followed"
    return response.status, f"HTTP {response.status} {response.reason}"[:500]


class _PinnedHTTP(http.client.HTTPConnection):
    """Connects to the address that passed the check, whatever the name resolves to now."""

    def __init__(self, host: str, port: int, address: str) -> None:
        super().__init__(host, port, timeout=TIMEOUT)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, address: str) -> None:
        super().__init__(host, port, timeout=TIMEOUT, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _connection(target: Target) -> http.client.HTTPConnection:
    kind = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    return kind(target.host, target.port, target.address)


def _record_sent(site: Site, subscription_id: int, claimed: _Claimed, status: int) -> None:
    with site.atomic():
        site.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == claimed.id)
            .values(
                status=DELIVERED,
                attempts=claimed.attempts + 1,
                last_status=status,
                last_error="",
                delivered=site.now(),
                next_attempt=0,
            )
            .execution_options(synchronize_session=False)
        )
        site.session.execute(
            update(WebhookSubscription)
            .where(WebhookSubscription.id == subscription_id)
            .values(failing_since=0)
        )


def _record_failure(
    site: Site, subscription_id: int, claimed: _Claimed, status: int, error: str
) -> bool:
    """Schedule the retry; disable the subscription after a day of failures (True then)."""
    now = site.now()
    attempts = claimed.attempts + 1
    with site.atomic():
        site.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == claimed.id)
            .values(
                attempts=attempts,
                last_status=status,
                last_error=error,
                next_attempt=now + min(BACKOFF_BASE * 2 ** (attempts - 1), BACKOFF_MAX),
            )
            .execution_options(synchronize_session=False)
        )
        subscription = site.session.get(WebhookSubscription, subscription_id)
        if not subscription.failing_since:
            subscription.failing_since = now
        if now - subscription.failing_since < DISABLE_AFTER:
            return False
        subscription.status = DISABLED
        site.forget(ACTIVE_MEMO)
        subscription.disabled_reason = f"failing since {iso(subscription.failing_since)}: {error}"[
            :1000
        ]
        record(site, "webhook_disabled", "core", reason=_describe(subscription) + f" ({error})")
    log.warning("webhook %s disabled after a day of failures: %s", subscription_id, error)
    return True
