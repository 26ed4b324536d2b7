"""Orders' price list in tests of the services topology, where no consume_events runs: inventory's
product events, as the relay would send them, through the real inbox and the price list's own
handlers (the inbox skips those it already took)."""

import json

from orders.price_list import HANDLERS
from saga.messaging.inbox import Handlers, consume
from saga.models import OutboxMessage

TOPIC = "inventory_events"


def price_list_handlers() -> Handlers:
    handlers = Handlers()
    for message, handler in HANDLERS.items():
        handlers.register(message.TYPE, handler)
    return handlers


def wire(message: OutboxMessage) -> bytes:
    """The envelope as the relay sends it."""
    body = {"id": str(message.id), "type": message.type, "correlation_id": None, "causation_id": None}
    return json.dumps({**body, "payload": message.payload}).encode()


def deliver(*messages: OutboxMessage, using: Handlers | None = None) -> list[str]:
    """Consume these product events, in this order; each one's outcome."""
    handlers = using or price_list_handlers()
    return [consume(TOPIC, wire(m), key=m.aggregate_id.encode(), using=handlers, lenient=True) for m in messages]


def price_list_told() -> None:
    """Every product event in the outbox, consumed (for a test that places orders in services)."""
    deliver(*OutboxMessage.objects.filter(type__in=[message.TYPE for message in HANDLERS]))
