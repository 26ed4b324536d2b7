"""Messaging: the transactional outbox and its relay to Kafka, the inbox and its consumer, dead
letters, the catalog of message types, and the correlation context messages carry.

It knows nothing of sagas. Apps use what this module exports:

    messages_declare("order", [OrderCreated, OrderConfirmed])                  # in ready()
    publish_message(OrderCreated(...), key=order.pk)                           # in a transaction
    message_handler_register(context="fulfillment", message=FulfillmentAccepted, handler=on_accepted)

Messages are frozen dataclasses naming their type (messages.py); `publish` takes a type and a
payload of JSON values, for messages not declared as classes (the engine's own).
"""

from .catalog import COMMANDS, EVENTS, Declared, catalog, topic_for
from .context import caused_by, current_request_id
from .inbox import Envelope, Handler, MalformedMessage, handlers
from .messages import Message, UnreadablePayload, message_from, message_payload
from .outbox import publish, publish_message, published_together

__all__ = [
    "COMMANDS",
    "EVENTS",
    "Envelope",
    "Handler",
    "MalformedMessage",
    "Message",
    "UnreadablePayload",
    "caused_by",
    "current_request_id",
    "message_from",
    "message_handler_register",
    "message_payload",
    "messages_declare",
    "publish",
    "publish_message",
    "published_together",
    "topic_for",
]


def messages_declare(context: str, messages: Declared, *, kind: str = EVENTS) -> None:
    """Declare the messages an app sends: their classes (or type -> what the payload carries).
    They travel on the topic `<context>_<kind>` (renamed by the KAFKA_TOPICS setting)."""
    catalog.declare(context, messages, kind=kind)


def message_handler_register(*, context: str, message: type[Message], handler: Handler) -> None:
    """Act on inbound Kafka messages of the class `message`, read from `<context>_events` (called
    once per message id, in the transaction that records it)."""
    catalog.declare(context, [message], inbound=True)
    handlers.register(message.TYPE, handler)
