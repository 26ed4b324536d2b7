"""The inbox without Kafka: what `consume` does with each kind of message (real PostgreSQL)."""
import json
import uuid
from decimal import Decimal

import pytest

from payments import participant
from saga.messaging import inbox
from saga.models import DeadLetter, InboxMessage, OutboxMessage, ProcessedCommand, SagaStatus
from saga.orchestration.participants import command_handlers
from saga.services import inbound

from .conftest import order_state, place


def envelope(type: str, payload: dict, correlation_id=None, causation_id=None, id=None) -> bytes:
    return json.dumps({
        "id": str(id or uuid.uuid4()), "type": type, "payload": payload,
        "correlation_id": str(correlation_id) if correlation_id else None,
        "causation_id": str(causation_id) if causation_id else None,
    }).encode()


@pytest.mark.parametrize("value", [b"{not json", b'{"id": 1}\x00', b"[" * 200_000, b"", b"[]", b'{"id": "x", "type": "t"}'])
def test_unusable_messages_are_parked(db, value):
    assert inbox.consume("fulfillment_events", value, key=b"k\x00") == "parked"
    assert DeadLetter.objects.count() == 1 and not InboxMessage.objects.exists()


def test_a_message_is_acted_on_once(harness, shop, settings):
    customer, product = shop
    order = place(customer.pk, product, 1, fulfillment="delivery")
    harness.run(order.saga_id)
    message = envelope("fulfillment.accepted", {"order_id": str(order.pk)})
    assert inbox.consume("fulfillment_events", message) == "processed"
    assert inbox.consume("fulfillment_events", message) == "duplicate"
    assert harness.run(order.saga_id).status == SagaStatus.COMPLETED
    assert order_state(order) == ("CONFIRMED", None)


@pytest.fixture
def payments_remote(settings):
    settings.SAGA_REMOTE_PARTICIPANTS = ["payments"]


def authorize_command() -> OutboxMessage:
    return OutboxMessage.objects.get(type="payment.authorize")


def test_a_reply_the_database_cannot_store_is_parked_not_retried_for_ever(payments_remote, harness, shop):
    customer, _ = shop
    order = place(customer.pk, amount=Decimal("5.00"))
    harness.run(order.saga_id)
    command_id = uuid.UUID(authorize_command().payload["command_id"])
    _, _, handlers = inbound()
    reply = envelope("payment.authorize.failed", {"error": "x\u0000y"}, order.saga_id, command_id)
    assert inbox.consume("payment_events", reply, using=handlers, lenient=True) == "parked"


def test_other_events_on_a_reply_topic_are_ignored(payments_remote, db):
    _, _, handlers = inbound()
    event = envelope("payment.captured", {"order_id": str(uuid.uuid4())})
    assert inbox.consume("payment_events", event, using=handlers, lenient=True) == "ignored"
    assert not DeadLetter.objects.exists()


def test_a_late_reply_to_an_earlier_command_does_not_resend_the_current_one(payments_remote, harness, shop):
    customer, _ = shop
    order = place(customer.pk, amount=Decimal("5.00"))
    harness.run(order.saga_id)
    command = authorize_command()
    command_id = uuid.UUID(command.payload["command_id"])
    harness.reply(order.saga_id, command_id, participant.PAYMENTS.commands["payment.authorize"](**command.payload["args"]))
    assert harness.run(order.saga_id).status == SagaStatus.WAITING  # for the capture's reply
    harness.reply(order.saga_id, command_id, {"status": "AUTHORIZED", "reason": "", "authorized": True})
    assert harness.run(order.saga_id).status == SagaStatus.WAITING
    assert OutboxMessage.objects.filter(type="payment.capture").count() == 1


def test_a_command_whose_reply_cannot_be_written_is_parked(db):
    served = command_handlers(participant.PAYMENTS)
    command = envelope("payment.void", {"command_id": str(uuid.uuid4()), "key": "k" * 101,
                                        "args": {"order_id": str(uuid.uuid4())}}, uuid.uuid4(), uuid.uuid4())
    assert inbox.consume("payment_commands", command, using=served) == "parked"


def test_a_command_with_bad_arguments_gets_a_failed_reply(db):
    served = command_handlers(participant.PAYMENTS)
    command_id = uuid.uuid4()
    command = envelope("payment.void", {"command_id": str(command_id), "key": "k", "args": {"order": "x"}},
                       uuid.uuid4(), uuid.uuid4())
    assert inbox.consume("payment_commands", command, using=served) == "processed"
    reply = OutboxMessage.objects.get(type="payment.void.failed")
    assert reply.causation_id == command_id and "TypeError" in reply.payload["error"]


def test_a_command_sent_again_is_answered_from_its_record_not_run_twice(db, shop):
    customer, _ = shop
    served = command_handlers(participant.PAYMENTS)
    order_id, command_id = uuid.uuid4(), uuid.uuid4()
    args = {"order_id": str(order_id), "customer_id": str(customer.pk), "amount": "7.00"}
    payload = {"command_id": str(command_id), "key": str(order_id), "args": args}
    for _ in range(2):  # two sends of one command: two messages, one command id
        assert inbox.consume("payment_commands", envelope("payment.authorize", payload, uuid.uuid4(), command_id),
                             using=served) == "processed"
    replies = OutboxMessage.objects.filter(type="payment.authorize.succeeded")
    assert [r.payload for r in replies] == [replies[0].payload] * 2 and replies[0].payload["authorized"]
    assert OutboxMessage.objects.filter(type="payment.authorized").count() == 1  # the effect happened once
    record = ProcessedCommand.objects.get()
    assert (record.command_id, record.command, record.result) == (command_id, "payment.authorize", replies[0].payload)
