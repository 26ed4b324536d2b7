"""The transactional outbox: `publish` writes a message in the caller's transaction; the relay
(relay.py) sends it to Kafka after the transaction commits. Nothing committed goes unannounced,
and nothing rolled back is ever announced. Which topic a type goes to is the catalog's business.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.transaction import TransactionManagementError

from saga.core.rows import rows_insert

from .catalog import catalog, topic_for
from .context import current_cause, current_request_id
from .messages import Message, message_payload
from .models import OutboxMessage

SCHEMA_VERSION = 1


@dataclass
class _Together:
    """The messages published inside `published_together`, its database, and the savepoints open
    there when it began."""

    using: str
    savepoints: int
    messages: list[OutboxMessage] = field(default_factory=list)


# The outermost `published_together` block; None outside.
_pending: ContextVar[_Together | None] = ContextVar("outbox_pending", default=None)


@contextmanager
def published_together(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Write the messages published inside (to the database `using`) in one INSERT when the block
    ends, still in the caller's transaction (and none if it raises, or if the transaction is to
    roll back). For a transaction that announces several facts, such as a saga's step.

    Refused outside a transaction, and for a message published in a savepoint opened inside the
    block (a nested `transaction.atomic()`): its INSERT, at the block's end, would be outside the
    savepoint, so a rollback of the savepoint would not take the message back. A block inside
    another is part of it."""
    if _pending.get() is not None:
        yield
        return
    connection = connections[using]
    if not connection.in_atomic_block:
        raise TransactionManagementError("published_together() needs a transaction: open it inside atomic()")
    together = _Together(using=using, savepoints=len(connection.savepoint_ids))
    token = _pending.set(together)
    try:
        yield
    finally:
        _pending.reset(token)
    if not connection.needs_rollback:
        rows_insert(together.messages, using=using)


def _pending_messages(using: str) -> list[OutboxMessage] | None:
    """Where `publish` puts a message to be written with the others; None: written at once (also a
    message to another database than the block's, which its INSERT cannot take)."""
    together = _pending.get()
    if together is None or together.using != using:
        return None
    if any(connections[using].savepoint_ids[together.savepoints :]):  # (None: an atomic block without a savepoint)
        raise TransactionManagementError(
            "publish() in a savepoint opened inside published_together(): a rollback of the savepoint "
            "would not take the message back. Publish it outside the savepoint, or without published_together()."
        )
    return together.messages


def publish(
    *,
    type: str,
    key: UUID | str,
    payload: dict[str, Any],
    correlation_id: UUID | None = None,
    causation_id: UUID | None = None,
    using: str = DEFAULT_DB_ALIAS,
) -> OutboxMessage:
    """Write one message of a declared `type` to the outbox of the database `using`, in the
    caller's transaction there (the database of the rows the message announces)."""
    declared = catalog.get(type)
    cause = current_cause()
    correlation_id = correlation_id or cause.correlation_id
    request = current_request_id()
    message_id = uuid4()
    message = OutboxMessage(
        id=message_id,
        topic=topic_for(declared.role),
        aggregate_type=declared.context,
        aggregate_id=str(key),
        type=type,
        payload=payload,  # written as JSON by the field's encoder (decimals, ids and times as text)
        # A message caused by no saga starts a conversation of its own.
        correlation_id=correlation_id or message_id,
        causation_id=causation_id or cause.causation_id,
        request_id=UUID(request) if request else None,
    )
    pending = _pending_messages(using)
    if pending is None:
        message.save(force_insert=True, using=using)
    else:
        pending.append(message)
    return message


def publish_message(
    message: Message, *, key: UUID | str, correlation_id: UUID | None = None, causation_id: UUID | None = None
) -> OutboxMessage:
    """Write one declared message (messages.py) to the outbox, in the caller's transaction."""
    return publish(
        type=message.TYPE,
        key=key,
        payload=message_payload(message),
        correlation_id=correlation_id,
        causation_id=causation_id,
    )


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
