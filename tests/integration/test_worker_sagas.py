"""Whole sagas through a real Celery worker process: flows, races, crashes, redelivery, volume."""

import random
import uuid
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from customers import services as customers
from inventory import selectors as inventory_selectors
from inventory import services as inventory
from orders import services as orders
from orders.models import Order
from saga.models import SagaInstance, SagaStatus, SagaStep
from saga.tasks import advance_saga
from tests.conftest import run_concurrently

from .conftest import assert_invariants, statuses, wait_for_terminal, wait_until

pytestmark = pytest.mark.worker


class Shop:
    """Customers and products created for a test, with their starting figures."""

    def __init__(self):
        self.balances: dict = {}
        self.stock: dict = {}

    def customer(self, balance: str, *, blocked: bool = False):
        customer = customers.customer_create(
            name=f"c-{uuid.uuid4().hex[:6]}", balance=Decimal(balance), blocked=blocked
        )
        self.balances[customer.pk] = customer.balance
        return customer

    def product(self, price: str, stock: int):
        product = inventory.product_create(sku=f"p-{uuid.uuid4().hex[:8]}", name="p", price=Decimal(price), stock=stock)
        self.stock[product.pk] = stock
        return product

    def check(self) -> None:
        assert_invariants(self.balances, self.stock)


def place(customer_id, product=None, quantity=1, *, amount=None, fulfillment="pickup") -> Order:
    items = [orders.ItemRequest(quantity=quantity, product_id=product.pk)] if product else []
    return orders.order_place(customer_id=customer_id, items=items, amount=amount, fulfillment=fulfillment).order


def order_status(order: Order) -> tuple[str, str | None]:
    fresh = Order.objects.get(pk=order.pk)
    return fresh.status, fresh.reason


@pytest.fixture
def shop(app_env) -> Shop:
    return Shop()


def test_seed_flows_end_as_the_contract_says(start_worker, shop):
    start_worker()
    rich, poor, blocked = shop.customer("100.00"), shop.customer("5.00"), shop.customer("100.00", blocked=True)
    widget, scarce = shop.product("10.00", 50), shop.product("1.00", 1)
    approved = place(rich.pk, widget, 2)
    exceeded = place(poor.pk, widget, 1)
    unknown = place(uuid.uuid4(), widget, 1)
    out_of_stock = place(rich.pk, scarce, 2)
    declined = place(blocked.pk, widget, 3)
    delivery = place(rich.pk, widget, 1, fulfillment="delivery")
    slow = place(rich.pk, widget, 1, fulfillment="delivery")
    cancelled = place(rich.pk, widget, 1, fulfillment="delivery")

    wait_until(lambda: order_status(delivery)[0] == "AWAITING_ACCEPTANCE", what="delivery to wait")
    orders.order_accept(order_id=delivery.pk)
    wait_until(lambda: order_status(cancelled)[0] == "AWAITING_ACCEPTANCE", what="order to wait")
    orders.order_cancel(order_id=cancelled.pk)
    wait_for_terminal([approved, exceeded, unknown, out_of_stock, declined, delivery, slow, cancelled])

    assert order_status(approved) == ("CONFIRMED", None)
    assert order_status(exceeded) == ("REJECTED", "INSUFFICIENT_CREDIT")
    assert order_status(unknown) == ("REJECTED", "UNKNOWN_CUSTOMER")
    assert order_status(out_of_stock) == ("REJECTED", "OUT_OF_STOCK")
    assert order_status(declined) == ("REJECTED", "PAYMENT_DECLINED")
    assert order_status(delivery) == ("CONFIRMED", None)
    assert order_status(slow) == ("CANCELLED", "ACCEPTANCE_TIMEOUT")
    assert order_status(cancelled) == ("CANCELLED", "CANCELLED_BY_CUSTOMER")
    shop.check()


def test_twenty_orders_race_for_the_last_five_units(start_worker, shop, superuser):
    start_worker()
    buyer = shop.customer("1000.00")
    last = shop.product("1.00", 5)

    def order_over_http():
        client = APIClient()
        client.force_authenticate(superuser)
        body = {"customer_id": str(buyer.pk), "items": [{"product_id": str(last.pk), "quantity": 1}]}
        return client.post("/api/orders", body, format="json").json()["id"]

    ids = run_concurrently([order_over_http] * 20)
    placed = list(Order.objects.filter(pk__in=ids))
    wait_for_terminal(placed)
    assert statuses(placed) == {"CONFIRMED": 5, "REJECTED/OUT_OF_STOCK": 15}
    shop.check()

    product = inventory_selectors.products_by_ids(ids={last.pk})[last.pk]
    assert (product.stock, product.reserved) == (0, 0)


def test_twenty_orders_drain_one_balance(start_worker, shop):
    start_worker()
    buyer = shop.customer("100.00")
    placed = run_concurrently([lambda: place(buyer.pk, amount=Decimal("15.00"))] * 20)
    wait_for_terminal(placed)
    assert statuses(placed) == {"CONFIRMED": 6, "REJECTED/INSUFFICIENT_CREDIT": 14}
    shop.check()


def test_the_same_message_delivered_twice_acts_once(start_worker, shop):
    start_worker()
    buyer, widget = shop.customer("100.00"), shop.product("10.00", 10)
    placed = [place(buyer.pk, widget, 1) for _ in range(5)]
    for order in placed:  # every saga gets two extra copies of its doorbell at once
        advance_saga.delay(str(order.saga_id))
        advance_saga.delay(str(order.saga_id))
    wait_for_terminal(placed)
    assert statuses(placed) == {"CONFIRMED": 5}
    shop.check()


def test_worker_killed_in_the_middle_of_steps(start_worker, shop):
    slow = '{"authorize_payment": {"delay": 0.4}, "capture_payment": {"delay": 0.2}}'
    first = start_worker(SAGA_FAULTS=slow)
    buyer, widget = shop.customer("1000.00"), shop.product("1.00", 100)
    placed = [place(buyer.pk, widget, 1) for _ in range(12)]
    # A step commits with the saga's progress: the worker is past reserve_stock (on its way to the
    # slow authorize_payment) once a reservation has committed, and its transaction dies with it.
    wait_until(
        lambda: SagaStep.objects.filter(status=SagaStep.Status.SUCCEEDED, name="reserve_stock").exists(),
        what="a step in progress",
    )
    first.kill()
    assert not all(SagaInstance.objects.get(pk=o.saga_id).status == SagaStatus.COMPLETED for o in placed)
    start_worker(SAGA_FAULTS=slow)
    wait_for_terminal(placed)
    assert statuses(placed) == {"CONFIRMED": 12}
    shop.check()


def test_a_step_that_kills_its_worker_every_time_is_given_up_on(start_worker, shop):
    """The worker's child dies in the step; its doorbell comes back redelivered, and the saga is
    then moved with care (claim, then run), so that each death is counted and the saga stops."""
    start_worker(SAGA_FAULTS='{"authorize_payment": {"exit_attempts": 1000}}')
    buyer, widget = shop.customer("100.00"), shop.product("1.00", 10)
    order = place(buyer.pk, widget, 1)
    wait_for_terminal([order], timeout=120)
    assert order_status(order) == ("REJECTED", "PAYMENT_DECLINED")
    saga = SagaInstance.objects.get(pk=order.saga_id)
    assert "its worker died" in saga.error
    assert SagaStep.objects.filter(saga=saga, name="authorize_payment", status=SagaStep.Status.CRASHED).exists()
    shop.check()


def test_queue_flushed_while_sagas_are_in_flight(start_worker, shop, redis_client):
    buyer, widget = shop.customer("1000.00"), shop.product("1.00", 100)
    placed = [place(buyer.pk, widget, 1) for _ in range(10)]  # no worker yet: tasks wait in Redis
    redis_client.flushdb()
    assert all(SagaInstance.objects.get(pk=o.saga_id).status == SagaStatus.STARTED for o in placed)
    start_worker()  # only the sweeper can find them now
    wait_for_terminal(placed)
    assert statuses(placed) == {"CONFIRMED": 10}
    shop.check()


def test_transient_errors_and_failing_compensations_through_a_worker(start_worker, shop):
    faults = '{"reserve_stock": {"fail_attempts": 2}, "reserve_stock:compensation": {"fail_attempts": 3}}'
    start_worker(SAGA_FAULTS=faults)
    buyer, broke, widget = shop.customer("100.00"), shop.customer("0.00"), shop.product("1.00", 10)
    ok, rejected = place(buyer.pk, widget, 1), place(broke.pk, widget, 1)
    wait_for_terminal([ok, rejected])
    assert order_status(ok) == ("CONFIRMED", None)
    assert order_status(rejected) == ("REJECTED", "INSUFFICIENT_CREDIT")
    history = list(
        SagaStep.objects.filter(saga_id=rejected.saga_id, name="reserve_stock").values_list("kind", "status")
    )
    assert history == [("action", "FAILED")] * 2 + [("action", "SUCCEEDED")] + [("compensation", "FAILED")] * 3 + [
        ("compensation", "SUCCEEDED")
    ]
    shop.check()


def test_a_thousand_orders_of_mixed_outcomes(start_worker, shop):
    start_worker()
    rng = random.Random(7)
    buyers = [shop.customer(str(rng.choice([20, 200, 2000])) + ".00") for _ in range(30)]
    buyers.append(shop.customer("500.00", blocked=True))
    products = [shop.product(f"{rng.randint(1, 30)}.00", rng.choice([5, 50, 500])) for _ in range(10)]
    placed = []
    for _ in range(1000):
        who = rng.choice(buyers).pk if rng.random() > 0.02 else uuid.uuid4()
        if rng.random() < 0.1:
            placed.append(place(who, amount=Decimal(rng.randint(1, 100))))
        else:
            placed.append(place(who, rng.choice(products), rng.randint(1, 4)))
    wait_for_terminal(placed, timeout=600)
    outcomes = statuses(placed)
    assert sum(outcomes.values()) == 1000
    assert {"CONFIRMED", "REJECTED/OUT_OF_STOCK", "REJECTED/INSUFFICIENT_CREDIT"} <= set(outcomes)
    shop.check()
