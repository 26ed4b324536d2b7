"""Item 9 of issue 13: the log lines of one saga, from the HTTP request that placed the order to its
last step, all carry its ids, and production prints them as JSON lines."""

import json
import logging
import uuid

import pytest

from orders.saga import PLACE_ORDER
from saga.messaging.relay import _headers
from saga.models import OutboxMessage
from saga.testing.harness import SagaHarness
from shop.logging import console_formatter, json_formatter

IDS = ("request_id", "saga_id", "aggregate_id", "step", "attempt")


@pytest.fixture
def harness():
    return SagaHarness(PLACE_ORDER)


def place(api, customer, product, request_id):
    body = {"customer_id": str(customer.pk), "items": [{"product_id": str(product.pk), "quantity": 2}]}
    response = api.post("/api/orders", body, format="json", HTTP_X_REQUEST_ID=request_id)
    assert response.status_code == 202, response.content
    assert response["X-Request-ID"] == request_id
    return response.json()


def test_every_line_of_a_saga_carries_its_ids_from_the_request_to_its_last_step(
    api, customer, product, harness, caplog
):
    request_id = str(uuid.uuid4())
    caplog.set_level(logging.INFO)
    order = place(api, customer, product, request_id)
    harness.run(uuid.UUID(order["saga_id"]))

    lines = [r for r in caplog.records if getattr(r, "saga_id", None) == order["saga_id"]]
    messages = [r.getMessage() for r in lines]
    assert any(m.startswith("POST /api/orders 202") for m in messages), messages  # the HTTP request
    assert any("place_order v" in m and "started" in m for m in messages), messages
    assert any(m.startswith("action commit_stock attempt 1: SUCCEEDED") for m in messages), messages
    assert messages[-1] == "saga place_order COMPLETED"
    for record in lines:
        ids = {name: getattr(record, name, None) for name in IDS}
        assert None not in ids.values(), (record.getMessage(), ids)
        assert (record.request_id, record.aggregate_id) == (request_id, order["id"]), record.getMessage()
    # Each step's own lines name that step.
    step_lines = [r for r in lines if r.getMessage().startswith("action ")]
    assert {r.step for r in step_lines} >= {
        "reserve_stock",
        "hold_funds",
        "authorize_payment",
        "confirm_order",
        "capture_payment",
        "consume_funds",
        "commit_stock",
    }
    assert all(r.getMessage().split()[1] == r.step for r in step_lines)
    # Nothing of the saga is left bound once the request and the run are over.
    logging.getLogger("after").info("unrelated")
    assert getattr(caplog.records[-1], "saga_id", None) is None


def test_json_lines_name_the_order_and_console_lines_read_plainly(api, customer, product, harness, caplog):
    request_id = str(uuid.uuid4())
    caplog.set_level(logging.INFO)
    order = place(api, customer, product, request_id)
    harness.run(uuid.UUID(order["saga_id"]))
    record = next(r for r in caplog.records if r.getMessage() == "saga place_order COMPLETED")
    line = json.loads(json_formatter().format(record))
    assert line["event"] == "saga place_order COMPLETED"
    assert line["level"] == "info" and line["logger"] == "saga.orchestration.engine" and "timestamp" in line
    assert (line["request_id"], line["saga_id"], line["order_id"]) == (request_id, order["saga_id"], order["id"])
    assert {"step", "attempt"} <= set(line) and "aggregate_id" not in line
    assert f"order_id={order['id']}" in console_formatter().format(record)


def test_x_correlation_id_is_accepted_and_a_request_id_is_made_up_otherwise(api, customer, product):
    given = str(uuid.uuid4())
    body = {"customer_id": str(customer.pk), "amount": "1.00"}
    assert api.post("/api/orders", body, format="json", HTTP_X_CORRELATION_ID=given)["X-Request-ID"] == given
    made_up = api.post("/api/orders", body, format="json", HTTP_X_REQUEST_ID="not a uuid")["X-Request-ID"]
    assert str(uuid.UUID(made_up)) == made_up != "not a uuid"


def test_the_request_id_goes_with_the_sagas_messages_as_a_kafka_header(api, customer, product, harness):
    request_id = str(uuid.uuid4())
    order = place(api, customer, product, request_id)
    harness.run(uuid.UUID(order["saga_id"]))
    messages = OutboxMessage.objects.filter(correlation_id=order["saga_id"])
    assert {m.type for m in messages} >= {"saga.started", "saga.completed", "order.confirmed"}
    for message in messages:
        headers = dict(_headers(message))
        assert headers == {
            "type": message.type.encode(),
            "correlation_id": order["saga_id"].encode(),
            "request_id": request_id.encode(),
        }
