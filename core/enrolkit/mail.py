"""The mail outbox: callers queue messages in their own transaction; a task delivers them over SMTP.

Queueing inside the caller's transaction means a message exists only if the change that caused it
was committed, and a dedupe key naming that change means a retried or repeated run never queues
it twice. Delivery is a separate step so a slow or absent mail server never holds up enrolments.

``ENROLKIT_SMTP_URL`` names the server::

    smtp://host[:port]               port 25; STARTTLS whenever the server offers it
    smtps://host[:port]              port 465; TLS from the first byte
    smtp://user:password@host:587    SMTP AUTH; percent-encode ``@ : /`` in user and password
    ...?from=noreply@example.org     the sender (default ``noreply@<this host's name>``)
    ...&timeout=30                   seconds to wait on the server (default 30)

A welcome message is queued as its template and variables (:func:`queue_template`) and
rendered by the delivery task before it sends, whether or not SMTP is configured, so the outbox
stays readable and no user-written template runs inside the transaction that queued it.

Certificates are verified against the system's CAs; for a private CA point ``SSL_CERT_FILE`` at
it. Without ``ENROLKIT_SMTP_URL`` mail stays queued and readable (``enrolkit mail list``).

A failed attempt is retried after ``BACKOFF_BASE * 2**attempts`` seconds (1, 2, 4, 8 minutes);
the ``MAX_ATTEMPTS``-th failure, or a permanent refusal of the message (a 5xx reply to the
recipient or the content), marks it ``failed``. Delivery is at least once: a process killed after
the server accepted a message but before the outbox recorded it sends it again later.
"""

from __future__ import annotations

import logging
import os
import smtplib
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from . import templating
from .errors import EnrolkitError
from .models import MailMessage
from .outbox import DEFAULT_LIMIT, FAILED, QUEUED, SENT
from .site import Site
from .texts import Text

log = logging.getLogger(__name__)

SMTP_URL_ENV = "ENROLKIT_SMTP_URL"
MAX_ATTEMPTS = 5
BACKOFF_BASE = 60
#: How long a delivery run owns the messages it picked, so a parallel run leaves them alone.
LEASE = 600
DEFAULT_TIMEOUT = 30.0

_INSERTS = {"sqlite": sqlite.insert, "postgresql": postgresql.insert}


class MailError(EnrolkitError):
    """A message that cannot be queued, or an ``ENROLKIT_SMTP_URL`` that cannot be used."""


# --- queueing ---------------------------------------------------------------------------------


def queue(
    site: Site,
    *,
    to: str,
    subject: str,
    body: str,
    html: str = "",
    key: str | None = None,
) -> bool:
    """Add a message to the outbox in the caller's transaction; False if ``key`` was queued before.

    ``key`` names the state change the message announces (for example
    ``"welcome:instance:12:user:5:enrolment:1788220800"``), so a retry or a repeated run that
    reaches the same change adds nothing. Nothing is sent until the transaction commits and the
    delivery task runs.
    """
    return _insert(site, to=to, subject=subject, key=key, body=body, html=html)


def queue_template(
    site: Site,
    *,
    to: str,
    subject: str,
    template: str,
    variables: Mapping[str, Any],
    key: str | None = None,
) -> bool:
    """Queue a message written by a user (a welcome template) with its variables, as
    :func:`queue` does; the delivery task renders it (:func:`render_queued`).

    A user-written template may take up to the site's render time limit: run in the caller's
    transaction it would hold that transaction's lock meanwhile (a login, an enrolment), so it
    runs later, outside any write transaction, and a template that fails marks the message
    failed instead of undoing the change."""

    def refuse(_mail: TemplateMail, error: MailError) -> None:
        raise error

    return bool(
        queue_templates(site, [TemplateMail(to, subject, template, variables, key)], refuse)
    )


@dataclass(frozen=True)
class TemplateMail:
    """One message of :func:`queue_templates`: :func:`queue_template`'s arguments."""

    to: str
    subject: str
    template: str
    variables: Mapping[str, Any]
    key: str | None = None


def queue_templates(
    site: Site,
    mails: Sequence[TemplateMail],
    refused: Callable[[TemplateMail, MailError], None],
) -> int:
    """:func:`queue_template` for many messages, in one INSERT per 500: a batch of enrolments
    queues its welcomes at the cost of one. A message that cannot be queued (its address) is
    given to ``refused`` and the others are queued. Returns how many were queued (a key queued
    before adds nothing)."""
    rows = []
    for mail in mails:
        try:
            rows.append(
                _row(
                    site,
                    to=mail.to,
                    subject=mail.subject,
                    key=mail.key,
                    body="",
                    html="",
                    template=mail.template,
                    variables=templating.freeze_variables(mail.variables),
                )
            )
        except MailError as error:
            refused(mail, error)
    return _insert_rows(site, rows)


def _insert(site: Site, *, to: str, subject: str, key: str | None, **content: str) -> bool:
    return _insert_rows(site, [_row(site, to=to, subject=subject, key=key, **content)]) == 1


def _row(site: Site, *, to: str, subject: str, key: str | None, **content: str) -> dict:
    """The outbox row of a message, or MailError for an address or key that cannot be used."""
    address = parseaddr(to)[1]
    if "@" not in address or address != to.strip() or len(address) > 255:
        raise MailError(f"cannot queue mail to {to!r}: not a single email address")
    if key is not None and not 0 < len(key) <= 255:
        raise MailError(f"mail dedupe key must be 1 to 255 characters, got {len(key)}")
    now = site.now()
    return {
        "to": address,
        # Header-safe: a newline in a subject (from a user template) would split the header.
        "subject": " ".join(subject.split())[:255],
        **content,
        "status": QUEUED,
        "attempts": 0,
        "next_attempt": now,
        "last_error": "",
        "dedupe_key": key,
        "created": now,
        "sent": 0,
    }


#: Messages per INSERT: well under SQLite's limit of bound parameters.
_ROWS_PER_INSERT = 500


def _insert_rows(site: Site, rows: list[dict]) -> int:
    """Insert outbox rows whose key is not queued yet; how many were inserted."""
    dialect = site.session.get_bind().dialect.name
    inserted = 0
    for start in range(0, len(rows), _ROWS_PER_INSERT):
        statement = (
            _INSERTS[dialect](MailMessage)
            .values(rows[start : start + _ROWS_PER_INSERT])
            .on_conflict_do_nothing(index_elements=["dedupe_key"])
        )
        # RETURNING, not rowcount: a row comes back only when it was inserted, on both databases.
        inserted += len(site.session.scalars(statement.returning(MailMessage.id)).all())
    return inserted


# --- rendering --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderResult:
    rendered: int = 0
    failed: int = 0


def render_queued(site: Site, *, limit: int = DEFAULT_LIMIT) -> RenderResult:
    """Render up to ``limit`` queued template messages (:func:`queue_template`), oldest first.

    The rows are read in one short transaction and each result written in another; the
    templates themselves run with no transaction open, so a slow one holds no lock. A template
    that goes over a limit marks its message failed with the reason (``welcome template: line
    N: time limit: ...``); it is not retried, as it would fail the same way."""
    seconds = templating.time_limit(site)
    due = site.session.execute(
        select(MailMessage.id, MailMessage.subject, MailMessage.template, MailMessage.variables)
        .where(MailMessage.status == QUEUED, MailMessage.template.is_not(None))
        .order_by(MailMessage.id)
        .limit(limit)
    ).all()
    site.session.commit()  # end the read: nothing is held while templates run
    rendered = failed = 0
    for row in due:
        try:
            message = templating.render_message(
                row.template,
                templating.thaw_variables(row.variables or "{}"),
                subject=row.subject,
                seconds=seconds,
            )
        except templating.TemplateError as exc:
            values = {
                "status": FAILED,
                "last_error": f"welcome template: {exc}"[:2000],
                "next_attempt": 0,
            }
            log.warning("mail %d to be rendered: %s", row.id, exc)
        else:
            values = {"body": message.text, "html": message.html}
        with site.atomic():
            done = site.session.execute(
                update(MailMessage)
                .where(MailMessage.id == row.id, MailMessage.template.is_not(None))
                .values(template=None, variables=None, **values)
                .execution_options(synchronize_session=False)
            )
        if done.rowcount == 1:  # a parallel run may have rendered it first
            failed += values.get("status") == FAILED
            rendered += values.get("status") != FAILED
    return RenderResult(rendered=rendered, failed=failed)


# --- the SMTP server --------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to send, parsed from ``ENROLKIT_SMTP_URL``. The password never prints."""

    host: str
    port: int
    implicit_tls: bool
    sender: str
    user: str = ""
    password: str = field(default="", repr=False)
    timeout: float = DEFAULT_TIMEOUT

    @classmethod
    def from_url(cls, url: str) -> SmtpConfig:
        # Messages name the host only: the URL may carry a password.
        parts = urlsplit(url.strip())
        if parts.scheme not in ("smtp", "smtps"):
            raise MailError(
                Text(
                    "%(variable)s must start with smtp:// or smtps://, not %(scheme)s://",
                    variable=SMTP_URL_ENV,
                    scheme=parts.scheme or "?",
                )
            )
        if not parts.hostname:
            raise MailError(
                Text("%(variable)s names no host; use smtp://host:port", variable=SMTP_URL_ENV)
            )
        try:
            port = parts.port
        except ValueError:
            raise MailError(
                Text(
                    "%(variable)s has a bad port for host %(host)s",
                    variable=SMTP_URL_ENV,
                    host=parts.hostname,
                )
            ) from None
        implicit_tls = parts.scheme == "smtps"
        query = parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - {"from", "timeout"})
        if unknown:
            raise MailError(
                Text(
                    "%(variable)s: unknown option(s) %(options)s; known: from, timeout",
                    variable=SMTP_URL_ENV,
                    options=", ".join(unknown),
                )
            )
        sender = query.get("from", [f"noreply@{socket.gethostname()}"])[-1]
        if "@" not in parseaddr(sender)[1]:
            raise MailError(
                Text(
                    "%(variable)s: from=%(sender)s is not an email address",
                    variable=SMTP_URL_ENV,
                    sender=repr(sender),
                )
            )
        try:
            timeout = float(query.get("timeout", [DEFAULT_TIMEOUT])[-1])
        except ValueError:
            timeout = 0
        if timeout <= 0:
            raise MailError(
                Text(
                    "%(variable)s: timeout must be a positive number of seconds",
                    variable=SMTP_URL_ENV,
                )
            )
        return cls(
            host=parts.hostname,
            port=port or (465 if implicit_tls else 25),
            implicit_tls=implicit_tls,
            sender=sender,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            timeout=timeout,
        )

    @property
    def where(self) -> str:
        return f"{'smtps' if self.implicit_tls else 'smtp'}://{self.host}:{self.port}"

    def connect(self) -> smtplib.SMTP:
        """An open, authenticated connection: TLS from the start, or STARTTLS when offered."""
        context = ssl.create_default_context()
        if self.implicit_tls:
            conn: smtplib.SMTP = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=context
            )
        else:
            conn = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            conn.ehlo()
            if not self.implicit_tls and conn.has_extn("starttls"):
                conn.starttls(context=context)
                conn.ehlo()
            if self.user:
                conn.login(self.user, self.password)
        except BaseException:
            conn.close()
            raise
        return conn


# --- delivery ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryResult:
    """What one delivery run did; ``str()`` is the one-line summary the task records."""

    configured: bool
    sent: int = 0
    #: failed this time, tried again later
    retrying: int = 0
    #: gave up on (last retry, or a permanent refusal)
    failed: int = 0
    #: still queued after the run (not due yet, over the limit, or no SMTP configured)
    queued: int = 0

    def __str__(self) -> Text:
        """A :class:`Text` (``str()`` keeps it): the tasks page shows it translated."""
        if not self.configured:
            queued = Text(
                "SMTP not configured (set %(variable)s): %(count)d message(s) stay queued in the "
                "outbox",
                variable=SMTP_URL_ENV,
                count=self.queued,
            )
            if not self.failed:
                return queued
            failed = Text("%(count)d failed to render", count=self.failed)
            return Text.join("; ", [queued, failed])
        return Text(
            "sent %(sent)d, retrying %(retrying)d, failed %(failed)d; %(queued)d queued",
            sent=self.sent,
            retrying=self.retrying,
            failed=self.failed,
            queued=self.queued,
        )


@dataclass(frozen=True)
class _Outgoing:
    id: int
    to: str
    subject: str
    body: str
    html: str
    attempts: int


def deliver(
    site: Site, smtp_url: str | None = None, *, limit: int = DEFAULT_LIMIT
) -> DeliveryResult:
    """Send up to ``limit`` due messages over SMTP (``smtp_url`` or ``ENROLKIT_SMTP_URL``).

    Commits as it goes: the claim of the batch, then each message's outcome, so the database is
    never locked while the mail server is talked to.
    """
    unrendered = render_queued(site, limit=limit).failed
    url = smtp_url or os.environ.get(SMTP_URL_ENV, "").strip()
    if not url:
        return DeliveryResult(configured=False, failed=unrendered, queued=_count_queued(site))
    config = SmtpConfig.from_url(url)
    batch = _claim(site, limit)
    counts = {SENT: 0, QUEUED: 0, FAILED: 0}
    conn: smtplib.SMTP | None = None
    try:
        for position, message in enumerate(batch):
            try:
                if conn is None:
                    conn = config.connect()
            except (smtplib.SMTPException, OSError) as exc:
                # The server is unusable: every message of the batch waits for the next run.
                error = f"{config.where}: {_describe(exc)}"
                for rest in batch[position:]:
                    counts[_record_failure(site, rest, error, permanent=False)] += 1
                break
            try:
                conn.send_message(
                    _build(message, config.sender), from_addr=config.sender, to_addrs=[message.to]
                )
            except (smtplib.SMTPException, OSError) as exc:
                counts[_record_failure(site, message, _describe(exc), _permanent(exc))] += 1
                if not _message_level(exc):
                    _close(conn)
                    conn = None
            else:
                _record_sent(site, message)
                counts[SENT] += 1
    finally:
        if conn is not None:
            _close(conn)
    result = DeliveryResult(
        configured=True,
        sent=counts[SENT],
        retrying=counts[QUEUED],
        failed=counts[FAILED] + unrendered,
        queued=_count_queued(site),
    )
    if batch:
        log.info("mail delivery via %s: %s", config.where, result)
    return result


def _count_queued(site: Site) -> int:
    with site.atomic():
        return site.session.scalar(
            select(func.count()).select_from(MailMessage).where(MailMessage.status == QUEUED)
        )


def _claim(site: Site, limit: int) -> list[_Outgoing]:
    """Take the due messages for this run by pushing their next attempt past a lease.

    Each claim is conditional on the row being unchanged, so when two runs race (``enrolkit mail
    send`` during a cron run) each message goes to exactly one of them.
    """
    now = site.now()
    claimed = []
    with site.atomic():
        due = site.session.execute(
            select(
                MailMessage.id,
                MailMessage.to,
                MailMessage.subject,
                MailMessage.body,
                MailMessage.html,
                MailMessage.attempts,
                MailMessage.next_attempt,
            )
            .where(
                MailMessage.status == QUEUED,
                MailMessage.next_attempt <= now,
                MailMessage.template.is_(None),
            )
            .order_by(MailMessage.next_attempt, MailMessage.id)
            .limit(limit)
        ).all()
        for row in due:
            taken = site.session.execute(
                update(MailMessage)
                .where(
                    MailMessage.id == row.id,
                    MailMessage.status == QUEUED,
                    MailMessage.next_attempt == row.next_attempt,
                )
                .values(next_attempt=now + LEASE)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount == 1:
                claimed.append(_Outgoing(*row[:6]))
    return claimed


def _record_sent(site: Site, message: _Outgoing) -> None:
    with site.atomic():
        site.session.execute(
            update(MailMessage)
            .where(MailMessage.id == message.id)
            .values(status=SENT, sent=site.now(), attempts=message.attempts + 1, next_attempt=0)
            .execution_options(synchronize_session=False)
        )


def _record_failure(site: Site, message: _Outgoing, error: str, permanent: bool) -> str:
    """Count the attempt and schedule the retry, or give up; return the new status."""
    attempts = message.attempts + 1
    gave_up = permanent or attempts >= MAX_ATTEMPTS
    status = FAILED if gave_up else QUEUED
    now = site.now()
    with site.atomic():
        site.session.execute(
            update(MailMessage)
            .where(MailMessage.id == message.id)
            .values(
                status=status,
                attempts=attempts,
                last_error=error[:2000],
                next_attempt=0 if gave_up else now + BACKOFF_BASE * 2**message.attempts,
            )
            .execution_options(synchronize_session=False)
        )
    log.warning(
        "mail %d to %s, attempt %d: %s%s",
        message.id,
        message.to,
        attempts,
        error,
        " (giving up)" if gave_up else "",
    )
    return status


def _build(message: _Outgoing, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = message.to
    email["Subject"] = message.subject
    email["Date"] = formatdate(usegmt=True)
    email["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].rstrip(">") or None)
    email.set_content(message.body)
    if message.html:
        email.add_alternative(message.html, subtype="html")
    return email


def _message_level(exc: BaseException) -> bool:
    """A refusal of this message only: the connection is still good for the next one."""
    return isinstance(
        exc, smtplib.SMTPRecipientsRefused | smtplib.SMTPSenderRefused | smtplib.SMTPDataError
    )


def _permanent(exc: BaseException) -> bool:
    """The server refused this recipient or content with a 5xx reply: retrying will not help."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return all(code >= 500 for code, _ in exc.recipients.values())
    return isinstance(exc, smtplib.SMTPDataError) and exc.smtp_code >= 500


def _describe(exc: BaseException) -> str:
    """A readable one-line error: the server's reply, or the network error."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(
            f"{addr} refused: {code} {_text(reply)}"
            for addr, (code, reply) in exc.recipients.items()
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{type(exc).__name__}: {exc.smtp_code} {_text(exc.smtp_error)}"
    return f"{type(exc).__name__}: {exc}"


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _close(conn: smtplib.SMTP) -> None:
    try:
        conn.quit()
    except (smtplib.SMTPException, OSError):
        conn.close()
