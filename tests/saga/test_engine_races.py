"""Races of the engine found from outside (issue 12): events that come early or late, replies that
come twice, a provider call whose answer was lost, tombstones, and an operator's retry."""

import threading
from decimal import Decimal
from uuid import UUID

import pytest
from django.db import connection

from orders import services as orders
from orders.saga import PLACE_ORDER
from payments.gateway import SandboxGateway
from saga.models import OutboxMessage, SagaInstance, SagaStatus, SagaStep
from saga.orchestration import engine
from tests.conftest import wait_for

from .conftest import die_mid_step, order_state, place
from .test_remote_participant import sent_command, serve


class AcceptWhileStepRuns:
    """Faults that, while `step` runs (and its transaction holds the saga's row), deliver the
    courier's acceptance from another connection, as the consumer would, and let the step go on
    once that delivery waits for the row."""

    def __init__(self, step: str, order_id: UUID):
        self.step, self.order_id = step, order_id
        self.accepted: list[bool] = []
        self.thread: threading.Thread | None = None

    def before(self, step, kind, ctx):
        if step == self.step and kind == "action" and self.thread is None:
            self.thread = threading.Thread(target=self._deliver)
            self.thread.start()
            wait_for(_someone_waits_for_a_row_lock, timeout=10, what="the delivery to wait for the saga's row")
        return None

    def _deliver(self) -> None:
        try:
            self.accepted.append(orders.order_accepted_by_courier(order_id=self.order_id))
        finally:
            connection.close()


def _someone_waits_for_a_row_lock() -> bool:
    with connection.cursor() as cursor:
        # Inside the step's transaction pg_stat_activity would show what it showed first: look afresh.
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


# --- 1. an event is never lost because it came early -----------------------------------------


def test_an_acceptance_delivered_while_the_payment_step_holds_the_saga_is_kept(harness, shop, transactional_db):
    customer, product = shop
    order = place(customer.pk, product, 1, fulfillment="delivery")
    racing = AcceptWhileStepRuns("authorize_payment", order.pk)
    harness.runtime.faults = racing
    harness.run(order.saga_id)
    racing.thread.join(timeout=10)
    assert racing.accepted == [True]
    assert harness.run(order.saga_id).status == SagaStatus.COMPLETED
    assert order_state(order) == ("CONFIRMED", None)


def test_an_acceptance_between_the_payment_step_and_the_wait_is_kept(harness, shop):
    """The state a delivery blocked by the payment step finds when it wins the row after that
    step commits: the saga has moved to its wait but not entered it."""
    customer, product = shop
    order = place(customer.pk, product, 1, fulfillment="delivery")
    while SagaInstance.objects.get(pk=order.saga_id).current_step != "await_acceptance":
        engine.advancing.advance_one(order.saga_id, harness.runtime)
    assert harness.signal(order.saga_id, "fulfillment.accepted")
    assert harness.run(order.saga_id).status == SagaStatus.COMPLETED
    assert order_state(order) == ("CONFIRMED", None)


def test_an_acceptance_after_the_last_step_is_refused(harness, shop):
    """Found by the model-based test, when the saga was marked COMPLETED a transaction after its
    last step: an event in between had no step to look at. The last step now completes it."""
    customer, product = shop
    order = place(customer.pk, product, 1, fulfillment="delivery")
    harness.signal(order.saga_id, "fulfillment.accepted")
    steps = len(PLACE_ORDER.steps)
    while SagaInstance.objects.get(pk=order.saga_id).step_index < steps:
        engine.advancing.advance_one(order.saga_id, harness.runtime)
    assert SagaInstance.objects.get(pk=order.saga_id).status == SagaStatus.COMPLETED
    assert not harness.signal(order.saga_id, "fulfillment.accepted")
    assert order_state(order) == ("CONFIRMED", None)


def test_accept_over_http_before_the_wait_is_kept_and_answers_202(api, harness, shop):
    customer, product = shop
    order = place(customer.pk, product, 1, fulfillment="delivery")
    response = api.post(f"/api/orders/{order.pk}/accept")
    assert response.status_code == 202, response.json()
    assert harness.run(order.saga_id).status == SagaStatus.COMPLETED
    assert order_state(order) == ("CONFIRMED", None)


def test_accept_of_a_pickup_order_is_refused_for_it_has_no_wait(api, harness, shop):
    customer, product = shop
    order = place(customer.pk, product, 1, fulfillment="pickup")
    assert api.post(f"/api/orders/{order.pk}/accept").status_code == 409
    assert "_events" not in SagaInstance.objects.get(pk=order.saga_id).data


# --- 2. a wait lasts what it promises, no more ------------------------------------------------


def test_an_acceptance_after_the_deadline_is_refused_before_the_sweeper_runs(harness, shop, settings):
    settings.SHOP_ACCEPTANCE_TIMEOUT = 60
    customer, product = shop
    order = place(customer.pk, product, 1, fulfillment="delivery")
    assert harness.run(order.saga_id).status == SagaStatus.WAITING
    harness.clock.advance(61)
    assert not harness.signal(order.saga_id, "fulfillment.accepted")
    assert harness.run(order.saga_id).status == SagaStatus.COMPENSATED
    assert order_state(order) == ("CANCELLED", "ACCEPTANCE_TIMEOUT")


def test_a_saga_at_its_pivot_when_its_deadline_passes_goes_forward(harness, shop, settings):
    """Found by `make fuzz-engine`: the courier accepted, then no worker ran for a day. The saga,
    at its pivot with everything it needs, was rolled back with no reason (a pivot gives none)."""
    settings.SHOP_ACCEPTANCE_TIMEOUT = 60
    customer, product = shop
    order = place(customer.pk, product, 1, fulfillment="delivery")
    assert harness.run(order.saga_id).status == SagaStatus.WAITING
    assert harness.signal(order.saga_id, "fulfillment.accepted")  # on to confirm_order, not run yet
    harness.clock.advance(60 + 24 * 3600 + 1)
    assert harness.run(order.saga_id).status == SagaStatus.COMPLETED
    assert order_state(order) == ("CONFIRMED", None)


@pytest.mark.usefixtures("payments_remote")
def test_a_repeated_reply_does_not_wake_a_saga_waiting_for_the_courier(harness, shop):
    customer, _ = shop
    order = place(customer.pk, amount=Decimal("5.00"), fulfillment="delivery")
    harness.run(order.saga_id)
    _, authorize_id, _ = sent_command(order.saga_id)
    serve(harness, order.saga_id)
    waiting = harness.run(order.saga_id)
    assert (waiting.status, waiting.current_step) == (SagaStatus.WAITING, "await_acceptance")
    harness.reply(order.saga_id, authorize_id, {"status": "AUTHORIZED", "reason": ""})
    harness.clock.advance(1)
    again = harness.run(order.saga_id)
    assert (again.status, again.current_step, again.timer_at) == (
        SagaStatus.WAITING,
        "await_acceptance",
        waiting.timer_at,
    )
    assert SagaStep.objects.filter(saga_id=order.saga_id, name="await_acceptance").count() == 1
    assert orders.order_accept(order_id=order.pk).status == "AWAITING_ACCEPTANCE"


@pytest.fixture
def payments_remote(settings):
    settings.SAGA_REMOTE_PARTICIPANTS = ["payments"]


# --- 3. what may have happened outside is undone outside --------------------------------------


class AnswerLostGateway(SandboxGateway):
    """The provider authorizes, and its answer never reaches us."""

    def authorize(self, **kwargs):
        super().authorize(**kwargs)
        raise TimeoutError("the provider's answer was lost")


def test_an_authorization_whose_answer_was_lost_is_voided_at_the_provider(harness, shop, settings):
    settings.PAYMENTS_GATEWAY = f"{__name__}.AnswerLostGateway"
    customer, _ = shop
    order = place(customer.pk, amount=Decimal("7.00"))
    saga = harness.run(order.saga_id)
    assert (saga.status, order_state(order)) == (SagaStatus.COMPENSATED, ("REJECTED", "PAYMENT_DECLINED"))
    calls = [call for call, order_id in SandboxGateway.calls if order_id == order.pk]
    assert calls[0] == "authorize" and calls[-1] == "void"
    assert order.pk not in SandboxGateway.authorized()


# --- 4. tombstones are not facts --------------------------------------------------------------


def _types(order) -> list[str]:
    return list(
        OutboxMessage.objects.filter(aggregate_id=str(order.pk)).order_by("position").values_list("type", flat=True)
    )


def test_a_funds_refusal_announces_no_void_of_a_payment_that_never_was(harness, shop):
    customer, _ = shop
    order = place(customer.pk, amount=Decimal("100.01"))
    harness.run(order.saga_id)
    assert order_state(order) == ("REJECTED", "INSUFFICIENT_CREDIT")
    assert "payment.voided" not in _types(order)
    assert "funds.hold_refused" in _types(order)


def test_a_cancel_before_any_step_announces_no_release_of_what_never_was(harness, shop):
    customer, product = shop
    order = place(customer.pk, product, 1)
    assert harness.cancel(order.saga_id, "CANCELLED_BY_CUSTOMER")
    harness.run(order.saga_id)
    assert order_state(order) == ("CANCELLED", "CANCELLED_BY_CUSTOMER")
    assert not {"stock.released", "funds.released", "payment.voided"} & set(_types(order))


# --- 5. an operator's retry is a fresh start --------------------------------------------------


def test_after_an_operator_retry_a_step_gets_its_whole_crash_allowance_again(harness, shop):
    customer, product = shop
    order = place(customer.pk, product, 1)
    harness.raise_in("capture_payment", RuntimeError("down"))
    engine.advance(order.saga_id, harness.runtime)
    for _ in range(engine.MAX_CRASHES):
        die_mid_step(harness, order.saga_id)
    assert harness.run(order.saga_id).status == SagaStatus.FAILED
    engine.retry(order.saga_id, harness.runtime)
    die_mid_step(harness, order.saga_id)
    saga = harness.run(order.saga_id)
    assert saga.status == SagaStatus.COMPLETED
    crashes = SagaStep.objects.filter(saga_id=order.saga_id, status="CRASHED").count()
    assert crashes == engine.MAX_CRASHES + 1  # the history stays
