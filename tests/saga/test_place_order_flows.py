"""The place-order saga's flows, run synchronously by the harness over the real services."""

import uuid
from decimal import Decimal

from payments import selectors as payment_selectors
from saga.models import SagaStatus

from .conftest import funds, order_state, place, stock


def test_credit_approved_confirms_and_moves_money_and_goods(harness, shop):
    customer, product = shop
    order = place(customer.pk, product, 3)
    saga = harness.run(order.saga_id)
    assert saga.status == SagaStatus.COMPLETED
    assert order_state(order) == ("CONFIRMED", None)
    assert funds(customer) == (Decimal("70.00"), Decimal("0.00"))
    assert stock(product) == (2, 0)
    assert payment_selectors.payment_get(order_id=order.pk).status == "CAPTURED"
    assert [name for name, kind, status in harness.steps(order.saga_id)] == [
        "reserve_stock",
        "hold_funds",
        "authorize_payment",
        "await_acceptance",
        "confirm_order",
        "capture_payment",
        "consume_funds",
        "commit_stock",
    ]


def test_credit_exceeded_is_rejected_and_stock_released(harness, shop):
    customer, _ = shop
    order = place(customer.pk, amount=Decimal("100.01"))
    assert harness.run(order.saga_id).status == SagaStatus.COMPENSATED
    assert order_state(order) == ("REJECTED", "INSUFFICIENT_CREDIT")
    assert funds(customer) == (Decimal("100.00"), Decimal("0.00"))


def test_unknown_customer_is_rejected(harness, shop):
    _, product = shop
    order = place(uuid.uuid4(), product, 1)
    harness.run(order.saga_id)
    assert order_state(order) == ("REJECTED", "UNKNOWN_CUSTOMER")
    assert stock(product) == (5, 0)


def test_out_of_stock_is_rejected_with_funds_untouched(harness, shop):
    customer, product = shop
    order = place(customer.pk, product, 6)
    harness.run(order.saga_id)
    assert order_state(order) == ("REJECTED", "OUT_OF_STOCK")
    assert funds(customer) == (Decimal("100.00"), Decimal("0.00"))
    assert stock(product) == (5, 0)
    assert ("hold_funds", "action") not in harness.faults.calls
    assert ("authorize_payment", "action") not in harness.faults.calls


def test_payment_declined_after_stock_reserved_releases_stock(harness, shop):
    customer, product = shop
    from customers import services as customers

    customers.customer_update(customer_id=customer.pk, data={"blocked": True})
    order = place(customer.pk, product, 2)
    harness.run(order.saga_id)
    assert order_state(order) == ("REJECTED", "PAYMENT_DECLINED")
    assert stock(product) == (5, 0)
    assert funds(customer) == (Decimal("100.00"), Decimal("0.00"))
    assert ("reserve_stock", "compensation") in harness.faults.calls


def test_delivery_order_accepted_is_confirmed(harness, shop):
    customer, product = shop
    order = place(customer.pk, product, 1, fulfillment="delivery")
    assert harness.run(order.saga_id).status == SagaStatus.WAITING
    assert order_state(order) == ("AWAITING_ACCEPTANCE", None)
    assert harness.signal(order.saga_id, "fulfillment.accepted")
    assert harness.run(order.saga_id).status == SagaStatus.COMPLETED
    assert order_state(order) == ("CONFIRMED", None)
    assert stock(product) == (4, 0)


def test_delivery_not_accepted_in_time_is_cancelled_and_everything_released(harness, shop, settings):
    settings.SHOP_ACCEPTANCE_TIMEOUT = 60
    customer, product = shop
    order = place(customer.pk, product, 2, fulfillment="delivery")
    harness.run(order.saga_id)
    harness.clock.advance(59)
    assert harness.run(order.saga_id).status == SagaStatus.WAITING
    harness.clock.advance(2)
    assert harness.run(order.saga_id).status == SagaStatus.COMPENSATED
    assert order_state(order) == ("CANCELLED", "ACCEPTANCE_TIMEOUT")
    assert funds(customer) == (Decimal("100.00"), Decimal("0.00"))
    assert stock(product) == (5, 0)
    assert not harness.signal(order.saga_id, "fulfillment.accepted")


def test_cancel_while_pending_rolls_back(harness, shop):
    customer, product = shop
    order = place(customer.pk, product, 1, fulfillment="delivery")
    harness.run(order.saga_id)
    assert harness.cancel(order.saga_id, "CANCELLED_BY_CUSTOMER")
    harness.run(order.saga_id)
    assert order_state(order) == ("CANCELLED", "CANCELLED_BY_CUSTOMER")
    assert funds(customer) == (Decimal("100.00"), Decimal("0.00")) and stock(product) == (5, 0)


def test_cancel_before_any_step_ran(harness, shop):
    customer, product = shop
    order = place(customer.pk, product, 1)
    assert harness.cancel(order.saga_id, "CANCELLED_BY_CUSTOMER")
    harness.run(order.saga_id)
    assert order_state(order) == ("CANCELLED", "CANCELLED_BY_CUSTOMER")
    assert stock(product) == (5, 0)


def test_cancel_after_confirmation_is_refused(harness, shop):
    customer, product = shop
    order = place(customer.pk, product, 1)
    harness.run(order.saga_id)
    assert not harness.cancel(order.saga_id, "CANCELLED_BY_CUSTOMER")
    assert order_state(order) == ("CONFIRMED", None)
