"""The toy-order saga of the toyshop app through the harness: what a project's own definition and
participant get from the engine, under the minimal settings."""

import json
import uuid

from saga.messaging import inbox
from saga.messaging.outbox import envelope
from saga.models import OutboxMessage, SagaInstance, SagaStatus
from saga.orchestration.participants import command_handlers
from saga.services import inbound
from saga.tests.toyshop.participant import TOYBOX
from saga.tests.toyshop.saga import toy_order_place

from .conftest import order_data, reservation, stock


def announced(saga_id) -> list[str]:
    return list(OutboxMessage.objects.filter(correlation_id=saga_id).values_list("type", flat=True))


def test_an_order_completes_and_its_participant_keeps_the_toys_it_shipped(harness, toys):
    order_id = uuid.uuid4()
    saga = harness.run(harness.start(data=order_data(order_id), aggregate_id=order_id))
    assert (saga.status, saga.reason) == (SagaStatus.COMPLETED, "")
    assert harness.steps(saga.id) == [
        ("reserve_toys", "action", "SUCCEEDED"),
        ("await_courier", "action", "SKIPPED"),
        ("ship", "action", "SUCCEEDED"),
    ]
    assert (stock(), reservation(order_id)) == (3, "SHIPPED")
    assert announced(saga.id) == ["saga.started", "toy.reserved", "toy.shipped", "saga.completed"]


def test_a_refusal_compensates_and_changes_nothing(harness, toys):
    order_id = uuid.uuid4()
    saga = harness.run(harness.start(data=order_data(order_id, quantity=6), aggregate_id=order_id))
    assert (saga.status, saga.reason) == (SagaStatus.COMPENSATED, "OUT_OF_STOCK")
    assert harness.steps(saga.id) == [
        ("reserve_toys", "action", "REFUSED"),
        ("reserve_toys", "compensation", "SUCCEEDED"),
    ]
    assert (stock(), reservation(order_id)) == (5, None)
    assert announced(saga.id) == ["saga.started", "saga.compensating", "saga.compensated"]


def test_no_courier_in_time_releases_the_toys(harness, toys):
    order_id = uuid.uuid4()
    saga_id = harness.start(data=order_data(order_id, delivery=True), aggregate_id=order_id)
    assert harness.run(saga_id).status == SagaStatus.WAITING
    assert (stock(), reservation(order_id)) == (3, "RESERVED")
    harness.clock.advance(3599)
    assert harness.run(saga_id).status == SagaStatus.WAITING
    harness.clock.advance(2)
    saga = harness.run(saga_id)
    assert (saga.status, saga.reason) == (SagaStatus.COMPENSATED, "NO_COURIER")
    assert (stock(), reservation(order_id)) == (5, "RELEASED")
    assert announced(saga_id)[-3:] == ["saga.compensating", "toy.released", "saga.compensated"]


def test_a_courier_booked_in_time_lets_the_order_ship(harness, toys):
    order_id = uuid.uuid4()
    saga_id = harness.start(data=order_data(order_id, delivery=True), aggregate_id=order_id)
    harness.run(saga_id)
    assert harness.signal(saga_id, "courier.booked")
    assert harness.run(saga_id).status == SagaStatus.COMPLETED
    assert (stock(), reservation(order_id)) == (3, "SHIPPED")


def test_placing_an_order_starts_its_saga_in_the_callers_transaction(harness, toys):
    order_id = toy_order_place(sku="TEDDY", quantity=1)
    saga = SagaInstance.objects.get(aggregate_id=order_id)
    assert (saga.type, saga.version, saga.status, saga.data["quantity"]) == ("toy_order", 1, SagaStatus.STARTED, 1)
    assert harness.run(saga.id).status == SagaStatus.COMPLETED
    assert stock() == 4


def test_the_same_definition_runs_with_the_participant_remote(harness, toys, settings):
    """The toybox in a process of its own: its commands and replies go through the outbox and the
    inbox, here handed over by the test as the relay and the consumers would."""
    settings.SAGA_REMOTE_PARTICIPANTS = ["toybox"]
    served, (_, _, replies) = command_handlers(TOYBOX), inbound()
    order_id = uuid.uuid4()
    saga_id = harness.start(data=order_data(order_id), aggregate_id=order_id)
    for command in ("toy.reserve", "toy.ship"):
        assert harness.run(saga_id).status == SagaStatus.WAITING
        sent = OutboxMessage.objects.get(type=command)
        assert (sent.topic, sent.aggregate_id) == ("toy_commands", str(order_id))
        assert inbox.consume(sent.topic, relayed(sent), using=served) == "processed"  # run_participant toybox
        reply = OutboxMessage.objects.get(type=f"{command}.succeeded")
        assert inbox.consume(reply.topic, relayed(reply), using=replies, lenient=True) == "processed"  # consume_events
    assert harness.run(saga_id).status == SagaStatus.COMPLETED
    assert (stock(), reservation(order_id)) == (3, "SHIPPED")


def relayed(message: OutboxMessage) -> bytes:
    """What the relay sends to Kafka for an outbox row."""
    return json.dumps(envelope(message)).encode()
