"""The place-order saga with payments remote, its replies given by hand (no Kafka here)."""

from decimal import Decimal
from uuid import UUID

import pytest

from payments import participant
from saga.models import OutboxMessage, SagaStatus, SagaStep

from .conftest import funds, order_state, place, stock


@pytest.fixture(autouse=True)
def payments_remote(settings):
    settings.SAGA_REMOTE_PARTICIPANTS = ["payments"]


def sent_command(saga_id) -> tuple[str, UUID, dict]:
    message = OutboxMessage.objects.filter(correlation_id=saga_id, topic__startswith="payment_commands").last()
    return message.type, UUID(message.payload["command_id"]), message.payload["args"]


def serve(harness, saga_id) -> None:
    """Play the payments process: run the command sent last and reply with its result."""
    command, command_id, args = sent_command(saga_id)
    served = participant.PAYMENTS.commands[command]
    result = served.answer(served.read(args))
    harness.reply(saga_id, command_id, result)


def test_the_step_waits_for_the_reply_then_completes(harness, shop):
    customer, product = shop
    order = place(customer.pk, product, 2)
    saga = harness.run(order.saga_id)
    assert saga.status == SagaStatus.WAITING
    command, _, args = sent_command(order.saga_id)
    assert (command, args["order_id"], args["amount"]) == ("payment.authorize", str(order.pk), "20.00")
    assert funds(customer) == (Decimal("100.00"), Decimal("20.00"))  # held by hold_funds, a local step of its own
    serve(harness, order.saga_id)
    assert harness.run(order.saga_id).status == SagaStatus.WAITING  # now waiting for capture
    assert sent_command(order.saga_id)[0] == "payment.capture"
    serve(harness, order.saga_id)
    assert harness.run(order.saga_id).status == SagaStatus.COMPLETED
    assert order_state(order) == ("CONFIRMED", None)
    assert funds(customer) == (Decimal("80.00"), Decimal("0.00")) and stock(product) == (3, 0)
    assert list(
        SagaStep.objects.filter(saga_id=order.saga_id, name="authorize_payment").values_list("status", flat=True)
    ) == ["SENT", "SUCCEEDED"]


def test_a_declined_remote_payment_compensates_through_the_participant(harness, shop):
    customer, _ = shop
    order = place(customer.pk, amount=Decimal("10.66"))
    harness.run(order.saga_id)
    serve(harness, order.saga_id)  # authorize: declined
    assert harness.run(order.saga_id).status == SagaStatus.WAITING
    assert sent_command(order.saga_id)[0] == "payment.void"
    serve(harness, order.saga_id)
    assert harness.run(order.saga_id).status == SagaStatus.COMPENSATED
    assert order_state(order) == ("REJECTED", "PAYMENT_DECLINED")
    assert funds(customer) == (Decimal("100.00"), Decimal("0.00"))


def test_a_failed_reply_is_retried_with_the_command_sent_again(harness, shop):
    customer, _ = shop
    order = place(customer.pk, amount=Decimal("5.00"))
    harness.run(order.saga_id)
    _, command_id, _ = sent_command(order.saga_id)
    harness.reply(order.saga_id, command_id, {"error": "ProviderDown"}, ok=False)
    assert harness.run(order.saga_id).status == SagaStatus.WAITING
    assert OutboxMessage.objects.filter(type="payment.authorize", correlation_id=order.saga_id).count() == 2
    serve(harness, order.saga_id)
    serve_next = harness.run(order.saga_id)
    assert serve_next.status == SagaStatus.WAITING
    serve(harness, order.saga_id)
    assert harness.run(order.saga_id).status == SagaStatus.COMPLETED


def test_no_reply_in_time_retries_then_compensates(harness, shop):
    customer, _ = shop
    order = place(customer.pk, amount=Decimal("5.00"))
    for _ in range(3):
        harness.run(order.saga_id)
        harness.clock.advance(31)
    saga = harness.run(order.saga_id)
    assert "no reply" in saga.error
    assert saga.status in (SagaStatus.COMPENSATING, SagaStatus.WAITING)  # the void waits for its reply
    serve(harness, order.saga_id)
    assert harness.run(order.saga_id).status == SagaStatus.COMPENSATED
    assert order_state(order) == ("REJECTED", "PAYMENT_DECLINED")


def test_a_saga_waiting_for_a_reply_counts_the_attempt_that_sent_the_command(harness, shop):
    customer, _ = shop
    order = place(customer.pk, amount=Decimal("5.00"))

    def waiting_at() -> tuple[str, int]:
        saga = harness.run(order.saga_id)
        sent = saga.steps.filter(status=SagaStep.Status.SENT).order_by("id").last()
        assert saga.status == SagaStatus.WAITING and saga.attempts == sent.attempt
        return sent.name, sent.attempt

    assert waiting_at() == ("authorize_payment", 1)
    harness.clock.advance(31)  # no reply in time: the second attempt sends the command again
    assert waiting_at() == ("authorize_payment", 2)
    serve(harness, order.saga_id)
    assert waiting_at() == ("capture_payment", 1)
    serve(harness, order.saga_id)
    assert harness.run(order.saga_id).status == SagaStatus.COMPLETED
