"""The place-order definition, given / expect: what the saga is given, then the attempts it must show
and where it must stand, over the real database and the contexts' real services."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest

from customers import services as customers
from inventory import services as inventory
from orders.saga import PLACE_ORDER
from orders.saga_data import PlaceOrderData
from payments import selectors as payments
from saga.testing.scenario import (
    Attempt,
    SagaScenario,
    abandoned,
    compensated,
    compensation_failed,
    compensation_sent,
    failed,
    given,
    refused,
    sent,
    skipped,
    succeeded,
    timed_out,
    waiting,
)

from .conftest import funds, order_state, place, stock

ACCEPTED = "fulfillment.accepted"
# The steps each path goes through, in version 2's order.
FUNDS_HELD_AND_PAYMENT_AUTHORIZED = (succeeded("hold_funds"), succeeded("authorize_payment"))
AFTER_THE_PIVOT = ("capture_payment", "consume_funds", "commit_stock")
MONEY_AND_GOODS_MOVE = tuple(succeeded(step) for step in AFTER_THE_PIVOT)
EVERYTHING_RELEASED = (compensated("authorize_payment"), compensated("hold_funds"), compensated("reserve_stock"))


def money_and_goods_move(*, failing: str, times: int) -> list[Attempt]:
    """The steps after the pivot, each succeeding, `failing` after failing `times` times."""
    attempts = []
    for step in AFTER_THE_PIVOT:
        attempts += [failed(step, f"injected into {step}")] * (times if step == failing else 0)
        attempts.append(succeeded(step))
    return attempts


def saga_of(order) -> SagaScenario:
    """The scenario of the saga that placing `order` started."""
    return given(PLACE_ORDER, saga_id=order.saga_id)


# --- the data -----------------------------------------------------------------------------------


def test_the_saga_keeps_its_data_as_json_of_the_same_shape(shop):
    customer, product = shop
    order = place(customer.pk, product, 3, fulfillment="delivery")
    data = saga_of(order).saga.data
    assert data == {
        "order_id": str(order.pk),
        "customer_id": str(customer.pk),
        "total": "30.00",
        "fulfillment": "delivery",
        "lines": [{"product_id": str(product.pk), "quantity": 3}],
    }
    typed = PlaceOrderData.from_data(data)
    assert typed == PlaceOrderData(
        order_id=order.pk,
        customer_id=customer.pk,
        total=Decimal("30.00"),
        fulfillment="delivery",
        lines=(inventory.Line(product.pk, 3),),
    )
    assert typed.to_data() == data


def test_the_engine_s_own_keys_are_not_read_as_the_order_s():
    data = PlaceOrderData(
        order_id=uuid.uuid4(), customer_id=uuid.uuid4(), total=Decimal("5.10"), fulfillment="pickup", lines=()
    ).to_data()
    with_engine_keys = {**data, "_events": {ACCEPTED: {"by": "courier"}}, "_replies": {"x": {"ok": True}}}
    assert PlaceOrderData.from_data(with_engine_keys).to_data() == data


def test_the_definition_is_made_of_named_functions():
    functions = [PLACE_ORDER.on_compensated, PLACE_ORDER.deadline]
    for step in PLACE_ORDER.steps:
        functions += [getattr(step, name, None) for name in ("action", "compensation", "when", "timeout", "on_enter")]
    names = {f.__name__ for f in functions if callable(f)}
    assert "<lambda>" not in names
    assert {"reserve_stock", "release_stock", "has_items", "close_order", "acceptance_window"} <= names


# --- the flows ----------------------------------------------------------------------------------


def test_a_pickup_order_is_confirmed_and_its_money_and_goods_move(shop):
    customer, product = shop
    order = place(customer.pk, product, 3)
    saga_of(order).expect(
        succeeded("reserve_stock"),
        *FUNDS_HELD_AND_PAYMENT_AUTHORIZED,
        skipped("await_acceptance"),
        succeeded("confirm_order"),
        *MONEY_AND_GOODS_MOVE,
        status="COMPLETED",
    )
    assert order_state(order) == ("CONFIRMED", None)
    assert funds(customer) == (Decimal("70.00"), Decimal("0.00"))
    assert stock(product) == (2, 0)
    assert payments.payment_get(order_id=order.pk).status == "CAPTURED"


def test_an_order_without_items_moves_only_money(shop):
    customer, _ = shop
    order = place(customer.pk, amount=Decimal("12.50"))
    saga_of(order).expect(
        skipped("reserve_stock"),
        *FUNDS_HELD_AND_PAYMENT_AUTHORIZED,
        skipped("await_acceptance"),
        succeeded("confirm_order"),
        succeeded("capture_payment"),
        succeeded("consume_funds"),
        skipped("commit_stock"),
        status="COMPLETED",
    )
    assert order_state(order) == ("CONFIRMED", None)
    assert funds(customer) == (Decimal("87.50"), Decimal("0.00"))


def test_out_of_stock_rejects_the_order_before_any_money_is_held(shop):
    customer, product = shop
    order = place(customer.pk, product, 6)
    saga_of(order).expect(
        refused("reserve_stock", "OUT_OF_STOCK"),
        compensated("reserve_stock"),
        status="COMPENSATED",
        reason="OUT_OF_STOCK",
    )
    assert order_state(order) == ("REJECTED", "OUT_OF_STOCK")
    assert funds(customer) == (Decimal("100.00"), Decimal("0.00"))
    assert stock(product) == (5, 0)
    assert payments.payment_get(order_id=order.pk) is None


def test_insufficient_credit_rejects_the_order_before_any_payment_is_asked_for(shop):
    customer, _ = shop
    order = place(customer.pk, amount=Decimal("100.01"))
    saga_of(order).expect(
        skipped("reserve_stock"),
        refused("hold_funds", "INSUFFICIENT_CREDIT"),
        compensated("hold_funds"),
        status="COMPENSATED",
        reason="INSUFFICIENT_CREDIT",
    )
    assert order_state(order) == ("REJECTED", "INSUFFICIENT_CREDIT")
    assert funds(customer) == (Decimal("100.00"), Decimal("0.00"))
    assert payments.payment_get(order_id=order.pk) is None  # the customers context refused: payments never asked


def test_an_unknown_customer_is_rejected_and_the_stock_released(shop):
    _, product = shop
    order = place(uuid.uuid4(), product, 1)
    saga_of(order).expect(
        succeeded("reserve_stock"),
        refused("hold_funds", "UNKNOWN_CUSTOMER"),
        compensated("hold_funds"),
        compensated("reserve_stock"),
        status="COMPENSATED",
        reason="UNKNOWN_CUSTOMER",
    )
    assert order_state(order) == ("REJECTED", "UNKNOWN_CUSTOMER")
    assert stock(product) == (5, 0)
    assert payments.payment_get(order_id=order.pk) is None


def test_a_declined_payment_releases_the_funds_and_the_stock(shop):
    customer, _ = shop
    cheap = inventory.product_create(sku="Q", name="Q", price=Decimal("3.33"), stock=5)
    order = place(customer.pk, cheap, 2)  # 6.66: the sandbox gateway declines amounts ending in .66
    saga_of(order).expect(
        succeeded("reserve_stock"),
        succeeded("hold_funds"),
        refused("authorize_payment", "PAYMENT_DECLINED"),
        *EVERYTHING_RELEASED,
        status="COMPENSATED",
        reason="PAYMENT_DECLINED",
    )
    assert order_state(order) == ("REJECTED", "PAYMENT_DECLINED")
    assert funds(customer) == (Decimal("100.00"), Decimal("0.00"))
    assert stock(cheap) == (5, 0)
    assert payments.payment_get(order_id=order.pk).status == "DECLINED"


def test_a_blocked_customer_s_payment_is_declined(shop):
    customer, product = shop
    customers.customer_update(customer_id=customer.pk, data={"blocked": True})
    order = place(customer.pk, product, 2)
    saga_of(order).expect(
        succeeded("reserve_stock"),
        refused("hold_funds", "PAYMENT_DECLINED"),  # the customers context's CUSTOMER_BLOCKED, as the order says it
        compensated("hold_funds"),
        compensated("reserve_stock"),
        status="COMPENSATED",
        reason="PAYMENT_DECLINED",
    )
    assert stock(product) == (5, 0) and funds(customer) == (Decimal("100.00"), Decimal("0.00"))
    assert payments.payment_get(order_id=order.pk) is None


def test_a_delivery_order_waits_for_the_courier_then_is_confirmed(shop):
    customer, product = shop
    order = place(customer.pk, product, 1, fulfillment="delivery")
    saga = saga_of(order).expect(
        succeeded("reserve_stock"),
        *FUNDS_HELD_AND_PAYMENT_AUTHORIZED,
        waiting("await_acceptance"),
        status="WAITING",
    )
    assert order_state(order) == ("AWAITING_ACCEPTANCE", None)
    assert (funds(customer), stock(product)) == ((Decimal("100.00"), Decimal("10.00")), (5, 1))
    saga.given_event(ACCEPTED).expect(
        succeeded("await_acceptance"),
        succeeded("confirm_order"),
        *MONEY_AND_GOODS_MOVE,
        status="COMPLETED",
    )
    assert order_state(order) == ("CONFIRMED", None)
    assert (funds(customer), stock(product)) == ((Decimal("90.00"), Decimal("0.00")), (4, 0))
    saga.expect_event_refused(ACCEPTED)


def test_an_acceptance_that_comes_before_the_wait_is_kept_for_it(shop):
    customer, product = shop
    order = place(customer.pk, product, 1, fulfillment="delivery")
    saga = (
        saga_of(order)
        .given_event(ACCEPTED, {"courier": "c-7"})
        .expect(
            succeeded("reserve_stock"),
            *FUNDS_HELD_AND_PAYMENT_AUTHORIZED,
            succeeded("await_acceptance"),
            succeeded("confirm_order"),
            *MONEY_AND_GOODS_MOVE,
            status="COMPLETED",
        )
    )
    assert order_state(order) == ("CONFIRMED", None)
    assert saga.saga.data["_events"] == {ACCEPTED: {"courier": "c-7"}}  # beside the order's keys, unread by them


def test_a_delivery_not_accepted_in_time_is_cancelled_and_everything_released(shop, settings):
    settings.SHOP_ACCEPTANCE_TIMEOUT = 60
    customer, product = shop
    order = place(customer.pk, product, 2, fulfillment="delivery")
    saga = saga_of(order).expect(
        succeeded("reserve_stock"),
        *FUNDS_HELD_AND_PAYMENT_AUTHORIZED,
        waiting("await_acceptance"),
        status="WAITING",
    )
    assert saga.saga.timer_at == saga.harness.clock.now() + timedelta(seconds=60)
    window = (saga.saga.deadline - saga.saga.created_at).total_seconds()
    assert window == pytest.approx(60 + 24 * 3600, abs=5)  # the acceptance window and a day
    saga.given_time_passes(59).expect(status="WAITING")
    saga.given_time_passes(2).expect(
        timed_out("await_acceptance"),
        *EVERYTHING_RELEASED,
        status="COMPENSATED",
        reason="ACCEPTANCE_TIMEOUT",
    )
    assert order_state(order) == ("CANCELLED", "ACCEPTANCE_TIMEOUT")
    assert funds(customer) == (Decimal("100.00"), Decimal("0.00"))
    assert stock(product) == (5, 0)
    assert payments.payment_get(order_id=order.pk).status == "VOIDED"
    saga.expect_event_refused(ACCEPTED)


def test_a_cancel_while_waiting_rolls_back(shop):
    customer, product = shop
    order = place(customer.pk, product, 1, fulfillment="delivery")
    saga = saga_of(order).expect(
        succeeded("reserve_stock"),
        *FUNDS_HELD_AND_PAYMENT_AUTHORIZED,
        waiting("await_acceptance"),
        status="WAITING",
    )
    saga.given_cancel("CANCELLED_BY_CUSTOMER").expect(
        abandoned("await_acceptance"),
        *EVERYTHING_RELEASED,
        status="COMPENSATED",
        reason="CANCELLED_BY_CUSTOMER",
    )
    assert order_state(order) == ("CANCELLED", "CANCELLED_BY_CUSTOMER")
    assert funds(customer) == (Decimal("100.00"), Decimal("0.00")) and stock(product) == (5, 0)


def test_a_cancel_before_any_step_ran_undoes_what_might_have_begun(shop):
    customer, product = shop
    order = place(customer.pk, product, 1)
    saga_of(order).given_cancel("CANCELLED_BY_CUSTOMER").expect(
        compensated("reserve_stock"),
        status="COMPENSATED",
        reason="CANCELLED_BY_CUSTOMER",
    )
    assert order_state(order) == ("CANCELLED", "CANCELLED_BY_CUSTOMER")
    assert stock(product) == (5, 0)


def test_a_cancel_after_confirmation_is_refused_and_changes_nothing(shop):
    customer, product = shop
    order = place(customer.pk, product, 1)
    saga = saga_of(order).expect(
        succeeded("reserve_stock"),
        *FUNDS_HELD_AND_PAYMENT_AUTHORIZED,
        skipped("await_acceptance"),
        succeeded("confirm_order"),
        *MONEY_AND_GOODS_MOVE,
        status="COMPLETED",
    )
    saga.expect_cancel_refused("CANCELLED_BY_CUSTOMER").expect(status="COMPLETED")
    assert order_state(order) == ("CONFIRMED", None)
    assert stock(product) == (4, 0)


def test_transient_errors_are_retried_and_the_step_then_succeeds_once(shop):
    customer, product = shop
    order = place(customer.pk, product, 3)
    saga_of(order).given_error("reserve_stock", times=2).expect(
        failed("reserve_stock", "injected into reserve_stock"),
        failed("reserve_stock", "injected into reserve_stock"),
        succeeded("reserve_stock"),
        *FUNDS_HELD_AND_PAYMENT_AUTHORIZED,
        skipped("await_acceptance"),
        succeeded("confirm_order"),
        *MONEY_AND_GOODS_MOVE,
        status="COMPLETED",
    )
    assert stock(product) == (2, 0)
    assert funds(customer) == (Decimal("70.00"), Decimal("0.00"))


def test_errors_that_outlast_the_retries_roll_back_with_the_step_s_reason(shop):
    customer, product = shop
    order = place(customer.pk, product, 1)
    saga = (
        saga_of(order)
        .given_error("authorize_payment", times=3)
        .expect(
            succeeded("reserve_stock"),
            succeeded("hold_funds"),
            failed("authorize_payment"),
            failed("authorize_payment"),
            failed("authorize_payment"),
            *EVERYTHING_RELEASED,
            status="COMPENSATED",
            reason="PAYMENT_DECLINED",
        )
    )
    assert "injected into authorize_payment" in saga.saga.error
    assert order_state(order) == ("REJECTED", "PAYMENT_DECLINED")
    assert stock(product) == (5, 0) and funds(customer) == (Decimal("100.00"), Decimal("0.00"))


def test_a_hanging_pivot_is_cut_by_its_timeout_and_retried(shop):
    customer, product = shop
    order = place(customer.pk, product, 1)
    saga_of(order).given_hang("confirm_order").expect(
        succeeded("reserve_stock"),
        *FUNDS_HELD_AND_PAYMENT_AUTHORIZED,
        skipped("await_acceptance"),
        failed("confirm_order", "confirm_order hung for 31.0 s"),
        succeeded("confirm_order"),
        *MONEY_AND_GOODS_MOVE,
        status="COMPLETED",
    )
    assert order_state(order) == ("CONFIRMED", None)


@pytest.mark.parametrize("step", AFTER_THE_PIVOT)
def test_after_the_pivot_a_failing_step_is_retried_until_it_succeeds(shop, step):
    customer, product = shop
    order = place(customer.pk, product, 1)
    saga_of(order).given_error(step, times=5).expect(
        succeeded("reserve_stock"),
        *FUNDS_HELD_AND_PAYMENT_AUTHORIZED,
        skipped("await_acceptance"),
        succeeded("confirm_order"),
        *money_and_goods_move(failing=step, times=5),
        status="COMPLETED",
    )
    assert order_state(order) == ("CONFIRMED", None)
    assert funds(customer) == (Decimal("90.00"), Decimal("0.00")) and stock(product) == (4, 0)
    assert payments.payment_get(order_id=order.pk).status == "CAPTURED"


def test_a_compensation_that_fails_is_retried_until_it_succeeds(shop):
    _, product = shop
    order = place(uuid.uuid4(), product, 1)
    saga_of(order).given_compensation_error("reserve_stock", times=2).expect(
        succeeded("reserve_stock"),
        refused("hold_funds", "UNKNOWN_CUSTOMER"),
        compensated("hold_funds"),
        compensation_failed("reserve_stock", "injected into reserve_stock"),
        compensation_failed("reserve_stock", "injected into reserve_stock"),
        compensated("reserve_stock"),
        status="COMPENSATED",
        reason="UNKNOWN_CUSTOMER",
    )
    assert order_state(order) == ("REJECTED", "UNKNOWN_CUSTOMER")
    assert stock(product) == (5, 0)


def test_a_compensation_that_keeps_failing_stops_the_saga_for_an_operator(shop):
    _, product = shop
    order = place(uuid.uuid4(), product, 1)
    saga = (
        saga_of(order)
        .given_compensation_error("reserve_stock", times=10)
        .expect(
            succeeded("reserve_stock"),
            refused("hold_funds", "UNKNOWN_CUSTOMER"),
            compensated("hold_funds"),
            *[compensation_failed("reserve_stock")] * 10,
            status="FAILED",
            reason="UNKNOWN_CUSTOMER",
        )
    )
    assert saga.saga.current_step == "reserve_stock"
    assert order_state(order) == ("PENDING", None)  # not closed: its stock is still held
    assert stock(product) == (5, 1)


# --- payments as a remote participant: its replies are given ------------------------------------


@pytest.fixture
def payments_remote(settings):
    settings.SAGA_REMOTE_PARTICIPANTS = ["payments"]


AUTHORIZED = {"status": "AUTHORIZED", "reason": ""}
DECLINED = {"status": "DECLINED", "reason": "PAYMENT_DECLINED"}


def test_given_the_payment_replies_the_order_is_confirmed(shop, payments_remote):
    customer, product = shop
    order = place(customer.pk, product, 2)
    saga = saga_of(order).expect(
        succeeded("reserve_stock"),
        succeeded("hold_funds"),
        sent("authorize_payment", "payment.authorize"),
        status="WAITING",
    )
    saga.given_reply(AUTHORIZED).expect(
        succeeded("authorize_payment"),
        skipped("await_acceptance"),
        succeeded("confirm_order"),
        sent("capture_payment", "payment.capture"),
        status="WAITING",
    )
    saga.given_reply({**AUTHORIZED, "status": "CAPTURED"}).expect(
        succeeded("capture_payment"),
        succeeded("consume_funds"),
        succeeded("commit_stock"),
        status="COMPLETED",
    )
    assert order_state(order) == ("CONFIRMED", None)
    assert funds(customer) == (Decimal("80.00"), Decimal("0.00")) and stock(product) == (3, 0)
    assert payments.payment_get(order_id=order.pk) is None  # the replies were given: no payments process ran


def test_given_a_declined_reply_the_void_is_sent_and_everything_released(shop, payments_remote):
    customer, product = shop
    order = place(customer.pk, product, 2)
    saga = saga_of(order).expect(
        succeeded("reserve_stock"),
        succeeded("hold_funds"),
        sent("authorize_payment", "payment.authorize"),
        status="WAITING",
    )
    saga.given_reply(DECLINED).expect(
        refused("authorize_payment", "PAYMENT_DECLINED"),
        compensation_sent("authorize_payment", "payment.void"),
        status="WAITING",
        reason="PAYMENT_DECLINED",
    )
    saga.given_reply({"status": "VOIDED", "reason": ""}).expect(
        *EVERYTHING_RELEASED,
        status="COMPENSATED",
        reason="PAYMENT_DECLINED",
    )
    assert order_state(order) == ("REJECTED", "PAYMENT_DECLINED")
    assert funds(customer) == (Decimal("100.00"), Decimal("0.00")) and stock(product) == (5, 0)
