"""The orders the benchmarks place: two items each, pickup (no courier wait), from a pool of
customers rich enough never to be refused, and, for refusals, customers with no credit at all.
The same plan feeds the engine (through orders' services, as the API does) and the ceiling."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from django.db import transaction

from customers import services as customers
from inventory import services as inventory
from orders import services as orders

from .server import Observer

CUSTOMERS = 50  # enough that two to four sagas at once rarely wait for the same customer row
PRODUCTS = 20
RICH = Decimal("1000000000.00")
PRICE = Decimal("10.00")
STOCK = 1_000_000_000
TERMINAL = ("COMPLETED", "COMPENSATED", "FAILED")


@dataclass(frozen=True)
class Item:
    product_id: UUID
    sku: str
    quantity: int


@dataclass(frozen=True)
class PlannedOrder:
    customer_id: UUID
    items: tuple[Item, Item]


@dataclass(frozen=True)
class Catalog:
    rich: list[UUID]
    broke: list[UUID]  # no credit: their orders are refused at hold_funds and compensate
    products: list[Item]  # quantity 1 of each


def seed(tag: str) -> Catalog:
    """Customers and products of this run (`tag` keeps SKUs unique across seeds)."""
    with transaction.atomic():
        rich = [customers.customer_create(name=f"rich {n}", balance=RICH).pk for n in range(CUSTOMERS)]
        broke = [customers.customer_create(name=f"broke {n}", balance=Decimal("0.00")).pk for n in range(CUSTOMERS)]
        products = [
            inventory.product_create(sku=f"{tag}-{n}", name=f"product {n}", price=PRICE, stock=STOCK)
            for n in range(PRODUCTS)
        ]
    return Catalog(rich, broke, [Item(p.pk, p.sku, 1) for p in products])


def plan(catalog: Catalog, count: int, refusals: float = 0.0, seed: int = 1) -> list[PlannedOrder]:
    """`count` orders of two distinct products (one of one, two of the other); a share
    `refusals` of them by customers without credit."""
    rng = random.Random(seed)
    planned = []
    for _ in range(count):
        first, second = rng.sample(catalog.products, 2)
        pool = catalog.broke if rng.random() < refusals else catalog.rich
        items = (first, Item(second.product_id, second.sku, 2))
        planned.append(PlannedOrder(rng.choice(pool), items))
    return planned


def place(planned: list[PlannedOrder]) -> tuple[float, list[str]]:
    """Place the orders one after the other as the API does: orders.services.order_place, one
    transaction each (batching them in an outer transaction would add a savepoint per order that
    no POST makes); each saga starts as its transaction commits. Returns the wall-clock time of
    the first start and the sagas' ids."""
    began = time.time()
    saga_ids = []
    for order in planned:
        placed = orders.order_place(
            customer_id=order.customer_id,
            items=[orders.ItemRequest(quantity=i.quantity, product_id=i.product_id) for i in order.items],
        )
        saga_ids.append(str(placed.order.saga_id))
    return began, saga_ids


def wait_until_settled(observer: Observer, saga_ids: list[str], timeout: float) -> float:
    """Wait until every saga is terminal, failing when none has got there for `timeout` seconds
    (so a long run is not cut short while it moves); return the wall-clock time the last of them
    got there (its updated_at), not when the poll noticed. Polls of many sagas are spaced out, so
    that they cost the database little beside the sagas' own work."""
    interval = 0.25 + len(saga_ids) / 20_000
    moving, deadline = len(saga_ids), time.monotonic() + timeout
    while time.monotonic() < deadline:
        still_moving, last = observer.query(
            "SELECT count(*) FILTER (WHERE status NOT IN %s), extract(epoch FROM max(updated_at)) "
            "FROM saga_sagainstance WHERE id = ANY(%s::uuid[])",
            [TERMINAL, saga_ids],
        )[0]
        if not still_moving:
            return float(last)
        if still_moving < moving:
            moving, deadline = still_moving, time.monotonic() + timeout
        time.sleep(interval)
    raise TimeoutError(f"{moving} of {len(saga_ids)} sagas still moving, none settled in the last {timeout:.0f} s")


def one_at_a_time(observer: Observer, planned: list[PlannedOrder], timeout: float) -> tuple[list[str], list[float]]:
    """Place each order once the saga before it has finished (nothing queued behind another): the
    sagas' ids and each one's milliseconds from its placing to its terminal state."""
    saga_ids, latencies = [], []
    for order in planned:
        began, [saga_id] = place([order])
        latencies.append((wait_until_settled(observer, [saga_id], timeout) - began) * 1000)
        saga_ids.append(saga_id)
    return saga_ids, latencies
