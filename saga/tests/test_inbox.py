"""The inbox without Kafka: what `consume` does with each kind of message (real PostgreSQL)."""

import json
import uuid

import pytest

from saga.messaging import inbox
from saga.models import DeadLetter, InboxMessage, OutboxMessage, ProcessedCommand, SagaStatus
from saga.orchestration.participants import command_handlers
from saga.services import inbound
from saga.tests.toyshop.participant import TOYBOX

from .conftest import order_data, reservation, stock


def envelope(type: str, payload: dict, correlation_id=None, causation_id=None, id=None) -> bytes:
    return json.dumps(
        {
            "id": str(id or uuid.uuid4()),
            "type": type,
            "payload": payload,
            "correlation_id": str(correlation_id) if correlation_id else None,
            "causation_id": str(causation_id) if causation_id else None,
        }
    ).encode()


@pytest.mark.parametrize(
    "value", [b"{not json", b'{"id": 1}\x00', b"[" * 200_000, b"", b"[]", b'{"id": "x", "type": "t"}']
)
def test_unusable_messages_are_parked(db, value):
    assert inbox.consume("fulfillment_events", value, key=b"k\x00") == "parked"
    assert DeadLetter.objects.count() == 1 and not InboxMessage.objects.exists()


def test_a_message_is_acted_on_once(harness, toys):
    order_id = uuid.uuid4()
    saga_id = harness.start(data=order_data(order_id, delivery=True), aggregate_id=order_id)
    assert harness.run(saga_id).status == SagaStatus.WAITING
    message = envelope("courier.booked", {"order_id": str(order_id)})
    assert inbox.consume("courier_events", message) == "processed"
    assert inbox.consume("courier_events", message) == "duplicate"
    assert InboxMessage.objects.get().type == "courier.booked"
    assert harness.run(saga_id).status == SagaStatus.COMPLETED
    assert (reservation(order_id), stock()) == ("SHIPPED", 3)


def test_a_message_its_handler_cannot_use_is_parked_and_not_recorded(db):
    message = envelope("courier.booked", {"order_id": str(uuid.uuid4())})  # no such order
    assert inbox.consume("courier_events", message) == "parked"
    assert "unknown toy order" in DeadLetter.objects.get().error and not InboxMessage.objects.exists()


@pytest.fixture
def toybox_remote(settings):
    settings.SAGA_REMOTE_PARTICIPANTS = ["toybox"]


def sent_command(type: str) -> OutboxMessage:
    return OutboxMessage.objects.get(type=type)


def test_a_reply_the_database_cannot_store_is_parked_not_retried_for_ever(toybox_remote, harness, toys):
    order_id = uuid.uuid4()
    saga_id = harness.start(data=order_data(order_id), aggregate_id=order_id)
    harness.run(saga_id)
    command_id = uuid.UUID(sent_command("toy.reserve").payload["command_id"])
    _, _, handlers = inbound()
    reply = envelope("toy.reserve.failed", {"error": "x\u0000y"}, saga_id, command_id)
    assert inbox.consume("toy_events", reply, using=handlers, lenient=True) == "parked"


def test_other_events_on_a_reply_topic_are_ignored(toybox_remote, db):
    _, _, handlers = inbound()
    event = envelope("toy.shipped", {"order_id": str(uuid.uuid4())})
    assert inbox.consume("toy_events", event, using=handlers, lenient=True) == "ignored"
    assert not DeadLetter.objects.exists()


def test_a_late_reply_to_an_earlier_command_does_not_resend_the_current_one(toybox_remote, harness, toys):
    order_id = uuid.uuid4()
    saga_id = harness.start(data=order_data(order_id), aggregate_id=order_id)
    harness.run(saga_id)
    command = sent_command("toy.reserve")
    command_id = uuid.UUID(command.payload["command_id"])
    reserve = TOYBOX.commands["toy.reserve"]
    harness.reply(saga_id, command_id, reserve.answer(reserve.read(command.payload["args"])))
    assert harness.run(saga_id).status == SagaStatus.WAITING  # for the shipping's reply
    harness.reply(saga_id, command_id, {"done": True, "reason": ""})
    assert harness.run(saga_id).status == SagaStatus.WAITING
    assert OutboxMessage.objects.filter(type="toy.ship").count() == 1


def test_a_command_whose_reply_cannot_be_written_is_parked(db):
    served = command_handlers(TOYBOX)
    command = envelope(
        "toy.release",
        {"command_id": str(uuid.uuid4()), "key": "k" * 101, "args": {"order_id": str(uuid.uuid4())}},
        uuid.uuid4(),
        uuid.uuid4(),
    )
    assert inbox.consume("toy_commands", command, using=served) == "parked"


def test_a_command_with_bad_arguments_gets_a_failed_reply(db):
    served = command_handlers(TOYBOX)
    command_id = uuid.uuid4()
    command = envelope(
        "toy.release", {"command_id": str(command_id), "key": "k", "args": {"order": "x"}}, uuid.uuid4(), uuid.uuid4()
    )
    assert inbox.consume("toy_commands", command, using=served) == "processed"
    reply = OutboxMessage.objects.get(type="toy.release.failed")
    assert reply.causation_id == command_id and "UnreadablePayload" in reply.payload["error"]


def test_a_command_sent_again_is_answered_from_its_record_not_run_twice(toys):
    served = command_handlers(TOYBOX)
    order_id, command_id = uuid.uuid4(), uuid.uuid4()
    args = {"order_id": str(order_id), "sku": "TEDDY", "quantity": 2}
    payload = {"command_id": str(command_id), "key": str(order_id), "args": args}
    for _ in range(2):  # two sends of one command: two messages, one command id
        assert (
            inbox.consume("toy_commands", envelope("toy.reserve", payload, uuid.uuid4(), command_id), using=served)
            == "processed"
        )
    replies = OutboxMessage.objects.filter(type="toy.reserve.succeeded")
    assert [r.payload for r in replies] == [replies[0].payload] * 2 and replies[0].payload["done"]
    assert OutboxMessage.objects.filter(type="toy.reserved").count() == 1  # the effect happened once
    assert stock() == 3
    record = ProcessedCommand.objects.get()
    assert (record.command_id, record.command, record.result) == (command_id, "toy.reserve", replies[0].payload)
