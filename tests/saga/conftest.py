from decimal import Decimal

import pytest

from customers import selectors as customer_selectors
from customers import services as customers
from inventory import selectors as inventory_selectors
from inventory import services as inventory
from orders import selectors as order_selectors
from orders import services as orders
from orders.saga import PLACE_ORDER
from saga.models import SagaInstance
from saga.orchestration import engine
from saga.testing.harness import SagaHarness


@pytest.fixture
def harness() -> SagaHarness:
    return SagaHarness(PLACE_ORDER)


@pytest.fixture
def shop(db):
    """A small shop: one customer with 100.00, a product at 10.00 with 5 units."""
    customer = customers.customer_create(name="Ada", balance=Decimal("100.00"))
    product = inventory.product_create(sku="P", name="P", price=Decimal("10.00"), stock=5)
    return customer, product


def place(customer_id, product=None, quantity=1, *, amount=None, fulfillment="pickup"):
    items = [orders.ItemRequest(quantity=quantity, product_id=product.pk)] if product else []
    return orders.order_place(customer_id=customer_id, items=items, amount=amount, fulfillment=fulfillment).order


def order_state(order) -> tuple[str, str | None]:
    fresh = order_selectors.order_get(order_id=order.pk)
    return fresh.status, fresh.reason


def funds(customer) -> tuple[Decimal, Decimal]:
    fresh = customer_selectors.customer_get(customer_id=customer.pk)
    return fresh.balance, fresh.reserved


def stock(product) -> tuple[int, int]:
    fresh = inventory_selectors.products_by_ids(ids={product.pk})[product.pk]
    return fresh.stock, fresh.reserved


def die_mid_step(harness: SagaHarness, saga_id) -> None:
    """Claim the next attempt, as a worker would, and never run it: the worker died."""
    while not isinstance(engine.advancing.claim(saga_id, harness.runtime), engine.Claim):
        retry_at = SagaInstance.objects.get(pk=saga_id).retry_at
        harness.clock.advance((retry_at - harness.clock.now()).total_seconds())
