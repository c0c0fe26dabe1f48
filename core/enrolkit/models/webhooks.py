"""Tables of outgoing webhooks: subscriptions, the event outbox, and the deliveries (batches)."""

from __future__ import annotations

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from .base import NEVER_REUSED, Base, Timestamp


class WebhookSubscription(Base):
    """Where to send which events. The secret signs every request, so it is kept as issued (a
    digest could not sign); it is shown once, when the subscription is made. The log names a
    subscription by id ("webhook 3 to ..."), so ids are never reused."""

    __tablename__ = "webhook_subscriptions"
    __table_args__ = NEVER_REUSED
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    #: Comma-separated event names.
    events: Mapped[str] = mapped_column(Text)
    course_id: Mapped[int | None] = mapped_column(Integer, default=None)
    method: Mapped[str] = mapped_column(String(50), default="")
    secret: Mapped[str] = mapped_column(String(100))
    #: active or disabled
    status: Mapped[str] = mapped_column(String(20), default="active")
    disabled_reason: Mapped[str] = mapped_column(Text, default="")
    #: When the current run of failures began (0: the last attempt succeeded).
    failing_since: Mapped[int] = mapped_column(Timestamp, default=0)
    created: Mapped[int] = mapped_column(Timestamp, default=0)


class WebhookEvent(Base):
    """One event queued for one subscription, in the transaction of the change it announces."""

    __tablename__ = "webhook_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(Integer)
    #: The delivery (batch) that carries it; NULL until a delivery run picks it up.
    delivery_id: Mapped[int | None] = mapped_column(Integer, default=None)
    event: Mapped[str] = mapped_column(String(50))
    payload: Mapped[str] = mapped_column(Text)
    created: Mapped[int] = mapped_column(Timestamp, default=0)
    __table_args__ = (Index("ix_webhook_events_waiting", "subscription_id", "delivery_id", "id"),)


class WebhookDelivery(Base):
    """One signed request: a batch of events with a fixed ``webhook-id`` and body, so a retry or
    a replay sends the same message and receivers can deduplicate."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(Integer)
    msg_id: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    events: Mapped[int] = mapped_column(Integer, default=0)
    #: pending or delivered
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt: Mapped[int] = mapped_column(Timestamp, default=0)
    last_status: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[int] = mapped_column(Timestamp, default=0)
    delivered: Mapped[int] = mapped_column(Timestamp, default=0)
    __table_args__ = (
        UniqueConstraint("msg_id"),
        Index("ix_webhook_deliveries_queue", "subscription_id", "status", "id"),
    )
