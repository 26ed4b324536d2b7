"""The transactional outbox: `publish` writes a message in the caller's transaction; the relay
(saga/relay.py) sends it to Kafka after the transaction commits. Nothing committed goes
unannounced, and nothing rolled back is ever announced.

Message types and their payloads (every payload also carries `order_id` where there is one):

| topic              | type                          | payload                                          |
|--------------------|-------------------------------|--------------------------------------------------|
| order_events       | order.created                 | customer_id, total, fulfillment, items[{product_id, sku, quantity, unit_price}] |
|                    | order.awaiting_acceptance     | -                                                |
|                    | order.confirmed               | total                                            |
|                    | order.rejected / .cancelled   | reason                                           |
| inventory_events   | product.created / .updated    | id, sku, name, price, stock (key: product id)    |
|                    | product.deleted               | id                                               |
|                    | stock.reserved                | lines[{product_id, quantity}]                    |
|                    | stock.reservation_refused     | reason                                           |
|                    | stock.released / .committed   | lines[{product_id, quantity}]                    |
| customer_events    | customer.created / .updated   | id, name, email, balance, blocked (key: customer id) |
|                    | customer.deleted              | id                                               |
|                    | funds.held                    | customer_id, amount                              |
|                    | funds.hold_refused            | customer_id, amount, reason                      |
|                    | funds.released / .consumed    | customer_id, amount                              |
| payment_events     | payment.authorized            | customer_id, amount                              |
|                    | payment.declined              | customer_id, amount, reason                      |
|                    | payment.voided / .captured    | amount                                           |
| saga_events        | saga.started                  | saga_type, version                               |
|                    | saga.compensating             | saga_type, step, reason                          |
|                    | saga.completed                | saga_type                                        |
|                    | saga.compensated              | saga_type, reason                                |
|                    | saga.failed                   | saga_type, step, error                           |
| <ctx>_commands     | <command> (remote participants) | the command's arguments                        |
"""
import json
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Iterator
from uuid import UUID, uuid4

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder

from shop.correlation import current_correlation_id

from .models import OutboxMessage

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Cause:
    correlation_id: UUID | None
    causation_id: UUID | None


# Set by the saga engine while a step runs, so the events a participant publishes name the saga
# (correlation) and the command (causation) that caused them.
_cause: ContextVar[Cause | None] = ContextVar("message_cause", default=None)


@contextmanager
def caused_by(correlation_id: UUID | None, causation_id: UUID | None) -> Iterator[None]:
    token = _cause.set(Cause(correlation_id, causation_id))
    try:
        yield
    finally:
        _cause.reset(token)


def topic_for(context: str, kind: str = "events") -> str:
    """`order` → order_events; `payment`, "commands" → payment_commands (names are settings)."""
    return settings.KAFKA_TOPICS[f"{context}_{kind}"]


def publish(
    *,
    context: str,
    type: str,
    key: UUID | str,
    payload: dict[str, Any],
    kind: str = "events",
    correlation_id: UUID | None = None,
    causation_id: UUID | None = None,
) -> OutboxMessage:
    """Write one message to the outbox, in the caller's transaction."""
    cause = _cause.get() or Cause(None, None)
    request = current_correlation_id()
    correlation_id = correlation_id or cause.correlation_id or (UUID(request) if request else None)
    causation_id = causation_id or cause.causation_id
    message_id = uuid4()
    return OutboxMessage.objects.create(
        id=message_id,
        topic=topic_for(context, kind),
        aggregate_type=context,
        aggregate_id=str(key),
        type=type,
        payload=json.loads(json.dumps(payload, cls=DjangoJSONEncoder)),
        # A message caused by no saga or request starts a conversation of its own.
        correlation_id=correlation_id or message_id,
        causation_id=causation_id,
    )


def publish_status(*, context: str, types: dict[str, str], status: str, key: UUID, payload: dict[str, Any],
                   reason: str = "") -> OutboxMessage:
    """Announce that a participant's record (hold, reservation, payment) reached `status`."""
    return publish(context=context, type=types[status], key=key, payload={**payload, **({"reason": reason} if reason else {})})


def envelope(message: OutboxMessage) -> dict[str, Any]:
    """The contract's message shape."""
    return {
        "id": str(message.id),
        "type": message.type,
        "correlation_id": str(message.correlation_id),
        "causation_id": str(message.causation_id) if message.causation_id else None,
        "timestamp": message.created_at.isoformat().replace("+00:00", "Z"),
        "schema_version": SCHEMA_VERSION,
        "payload": message.payload,
    }
