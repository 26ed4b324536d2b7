import uuid
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from common.crud import StillReferenced
from customers import selectors, services
from customers.models import FundsHold
from tests.conftest import run_concurrently


def balance_of(customer) -> tuple[Decimal, Decimal]:
    fresh = selectors.customer_get(customer_id=customer.pk)
    return fresh.balance, fresh.reserved


def test_hold_release_consume_move_funds_exactly(customer):
    held, released = uuid.uuid4(), uuid.uuid4()
    assert services.funds_hold(order_id=held, customer_id=customer.pk, amount=Decimal("120.00")).held
    assert services.funds_hold(order_id=released, customer_id=customer.pk, amount=Decimal("30.00")).held
    assert balance_of(customer) == (Decimal("500.00"), Decimal("150.00"))

    services.funds_release(order_id=released)
    services.funds_consume(order_id=held)

    assert balance_of(customer) == (Decimal("380.00"), Decimal("0.00"))


def test_every_funds_command_is_idempotent_per_order(customer):
    order_id = uuid.uuid4()
    for _ in range(2):
        services.funds_hold(order_id=order_id, customer_id=customer.pk, amount=Decimal("100.00"))
    assert balance_of(customer) == (Decimal("500.00"), Decimal("100.00"))
    for _ in range(2):
        services.funds_consume(order_id=order_id)
    assert balance_of(customer) == (Decimal("400.00"), Decimal("0.00"))
    released = services.funds_release(order_id=order_id)
    assert released.status == FundsHold.Status.CONSUMED
    assert balance_of(customer) == (Decimal("400.00"), Decimal("0.00"))


@pytest.mark.parametrize(
    ("blocked", "amount", "reason"),
    [(False, Decimal("500.01"), services.INSUFFICIENT_CREDIT), (True, Decimal("1.00"), services.CUSTOMER_BLOCKED)],
)
def test_refusals_hold_nothing_and_are_remembered(customer, blocked, amount, reason):
    services.customer_update(customer_id=customer.pk, data={"blocked": blocked})
    order_id = uuid.uuid4()
    result = services.funds_hold(order_id=order_id, customer_id=customer.pk, amount=amount)
    assert (result.held, result.reason) == (False, reason)
    services.customer_update(customer_id=customer.pk, data={"blocked": False, "balance": Decimal("10000.00")})
    again = services.funds_hold(order_id=order_id, customer_id=customer.pk, amount=amount)
    assert (again.held, again.reason) == (False, reason)
    assert balance_of(customer)[1] == Decimal("0.00")


def test_unknown_customer_is_refused(db):
    result = services.funds_hold(order_id=uuid.uuid4(), customer_id=uuid.uuid4(), amount=Decimal("1.00"))
    assert (result.held, result.reason) == (False, services.UNKNOWN_CUSTOMER)


def test_release_before_hold_leaves_a_tombstone_that_refuses_a_late_hold(customer):
    order_id = uuid.uuid4()
    services.funds_release(order_id=order_id)
    late = services.funds_hold(order_id=order_id, customer_id=customer.pk, amount=Decimal("10.00"))
    assert not late.held
    assert balance_of(customer)[1] == Decimal("0.00")


def test_consuming_funds_never_held_is_an_error(customer):
    with pytest.raises(services.FundsNotHeld):
        services.funds_consume(order_id=uuid.uuid4())


def test_balance_cannot_drop_below_what_is_held(customer):
    services.funds_hold(order_id=uuid.uuid4(), customer_id=customer.pk, amount=Decimal("300.00"))
    with pytest.raises(ValidationError) as raised:
        services.customer_update(customer_id=customer.pk, data={"balance": Decimal("299.99")})
    assert "balance" in raised.value.message_dict
    assert balance_of(customer) == (Decimal("500.00"), Decimal("300.00"))


def test_customer_with_holds_cannot_be_deleted(customer):
    services.funds_hold(order_id=uuid.uuid4(), customer_id=customer.pk, amount=Decimal("1.00"))
    with pytest.raises(StillReferenced):
        services.customer_delete(customer_id=customer.pk)
    assert selectors.customer_get(customer_id=customer.pk) is not None


@pytest.mark.django_db(transaction=True)
def test_concurrent_holds_never_overcommit_a_balance():
    customer = services.customer_create(name="Race", balance=Decimal("100.00"))
    calls = [
        lambda: services.funds_hold(order_id=uuid.uuid4(), customer_id=customer.pk, amount=Decimal("30.00"))
        for _ in range(10)
    ]
    results = run_concurrently(calls)
    assert sum(1 for r in results if r.held) == 3
    assert sum(1 for r in results if r.reason == services.INSUFFICIENT_CREDIT) == 7
    assert balance_of(customer) == (Decimal("100.00"), Decimal("90.00"))


@pytest.mark.django_db(transaction=True)
def test_the_same_hold_sent_concurrently_holds_once():
    customer = services.customer_create(name="Twice", balance=Decimal("100.00"))
    order_id = uuid.uuid4()
    results = run_concurrently(
        [lambda: services.funds_hold(order_id=order_id, customer_id=customer.pk, amount=Decimal("40.00"))] * 8
    )
    assert all(r.held for r in results), results
    assert balance_of(customer) == (Decimal("100.00"), Decimal("40.00"))
