"""The shop's own inbound message, through the inbox (real PostgreSQL). What the inbox does with
each kind of message is the engine's, tested under its minimal settings: saga/tests/test_inbox.py."""

import json
import uuid

from saga.messaging import inbox
from saga.models import SagaStatus

from .conftest import order_state, place


def envelope(type: str, payload: dict) -> bytes:
    return json.dumps(
        {"id": str(uuid.uuid4()), "type": type, "payload": payload, "correlation_id": None, "causation_id": None}
    ).encode()


def test_a_message_is_acted_on_once(harness, shop, settings):
    customer, product = shop
    order = place(customer.pk, product, 1, fulfillment="delivery")
    harness.run(order.saga_id)
    message = envelope("fulfillment.accepted", {"order_id": str(order.pk)})
    assert inbox.consume("fulfillment_events", message) == "processed"
    assert inbox.consume("fulfillment_events", message) == "duplicate"
    assert harness.run(order.saga_id).status == SagaStatus.COMPLETED
    assert order_state(order) == ("CONFIRMED", None)
