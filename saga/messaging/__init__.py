"""Messaging: the transactional outbox and its relay to Kafka, the inbox and its consumer, dead
letters, the catalog of message types, and the correlation context messages carry.

It knows nothing of sagas. Apps use what this module exports:

    messages_declare("order", {"order.created": "customer_id, total, items"})   # in ready()
    publish(type="order.created", key=order.pk, payload={...})                 # in a transaction
    message_handler_register(context="fulfillment", type="fulfillment.accepted", handler=on_accepted)
"""

from .catalog import COMMANDS, EVENTS, catalog, topic_for
from .context import caused_by, current_request_id
from .inbox import Envelope, Handler, MalformedMessage, handlers
from .outbox import publish, publish_status, published_together

__all__ = [
    "COMMANDS",
    "EVENTS",
    "Envelope",
    "Handler",
    "MalformedMessage",
    "caused_by",
    "current_request_id",
    "message_handler_register",
    "messages_declare",
    "publish",
    "publish_status",
    "published_together",
    "topic_for",
]


def messages_declare(context: str, messages: dict[str, str], *, kind: str = EVENTS) -> None:
    """Declare the messages an app sends: type -> what the payload carries. They travel on the
    topic `<context>_<kind>` (renamed by the KAFKA_TOPICS setting)."""
    catalog.declare(context, messages, kind=kind)


def message_handler_register(*, context: str, type: str, handler: Handler, payload: str = "") -> None:
    """Act on inbound Kafka messages of `type`, read from `<context>_events` (called once per
    message id, in the transaction that records it)."""
    catalog.declare(context, {type: payload}, inbound=True)
    handlers.register(type, handler)
