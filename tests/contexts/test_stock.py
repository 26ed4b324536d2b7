import uuid
from decimal import Decimal

import pytest

from common.crud import StillReferenced
from inventory import selectors, services
from inventory.models import StockReservation
from inventory.services import Line
from tests.conftest import run_concurrently, while_uncommitted


def stock_of(product) -> tuple[int, int]:
    fresh = selectors.products_by_ids(ids={product.pk})[product.pk]
    return fresh.stock, fresh.reserved


def test_reserve_release_commit_move_stock_exactly(product):
    kept, released = uuid.uuid4(), uuid.uuid4()
    assert services.stock_reserve(order_id=kept, lines=[Line(product.pk, 3)]).reserved
    assert services.stock_reserve(order_id=released, lines=[Line(product.pk, 2)]).reserved
    assert stock_of(product) == (10, 5)
    services.stock_release(order_id=released)
    services.stock_commit(order_id=kept)
    assert stock_of(product) == (7, 0)


def test_lines_of_one_product_add_up(product):
    result = services.stock_reserve(order_id=uuid.uuid4(), lines=[Line(product.pk, 6), Line(product.pk, 5)])
    assert (result.reserved, result.reason) == (False, services.OUT_OF_STOCK)
    assert stock_of(product) == (10, 0)


def test_every_stock_command_is_idempotent_per_order(product):
    order_id = uuid.uuid4()
    for _ in range(2):
        services.stock_reserve(order_id=order_id, lines=[Line(product.pk, 4)])
    assert stock_of(product) == (10, 4)
    for _ in range(2):
        services.stock_commit(order_id=order_id)
    assert stock_of(product) == (6, 0)
    assert services.stock_release(order_id=order_id).status == StockReservation.Status.COMMITTED
    assert stock_of(product) == (6, 0)


def test_an_order_short_of_one_product_reserves_none(product):
    other = services.product_create(sku="OTHER", name="Other", price=Decimal("1.00"), stock=1)
    result = services.stock_reserve(order_id=uuid.uuid4(), lines=[Line(product.pk, 1), Line(other.pk, 2)])
    assert not result.reserved
    assert stock_of(product) == (10, 0) and stock_of(other) == (1, 0)


def test_unknown_product_is_out_of_stock(db):
    result = services.stock_reserve(order_id=uuid.uuid4(), lines=[Line(uuid.uuid4(), 1)])
    assert (result.reserved, result.reason) == (False, services.OUT_OF_STOCK)


def test_release_before_reserve_refuses_the_late_reservation(product):
    order_id = uuid.uuid4()
    services.stock_release(order_id=order_id)
    assert not services.stock_reserve(order_id=order_id, lines=[Line(product.pk, 1)]).reserved
    assert stock_of(product) == (10, 0)


def test_committing_unreserved_stock_is_an_error(product):
    with pytest.raises(services.StockNotReserved):
        services.stock_commit(order_id=uuid.uuid4())


def test_reserved_product_cannot_be_deleted(product):
    services.stock_reserve(order_id=uuid.uuid4(), lines=[Line(product.pk, 1)])
    with pytest.raises(StillReferenced):
        services.product_delete(product_id=product.pk)
    assert stock_of(product) == (10, 1)


@pytest.mark.django_db(transaction=True)
def test_concurrent_reservations_never_take_more_than_the_stock():
    product = services.product_create(sku="LAST", name="Last units", price=Decimal("1.00"), stock=5)
    results = run_concurrently(
        [lambda: services.stock_reserve(order_id=uuid.uuid4(), lines=[Line(product.pk, 1)]) for _ in range(20)]
    )
    assert sum(1 for r in results if r.reserved) == 5
    assert sum(1 for r in results if r.reason == services.OUT_OF_STOCK) == 15
    assert stock_of(product) == (5, 5)


@pytest.mark.django_db(transaction=True)
def test_crossing_multi_product_reservations_do_not_deadlock():
    a = services.product_create(sku="A", name="A", price=Decimal("1.00"), stock=100)
    b = services.product_create(sku="B", name="B", price=Decimal("1.00"), stock=100)
    calls = [
        (lambda lines=lines: services.stock_reserve(order_id=uuid.uuid4(), lines=lines))
        for lines in ([Line(a.pk, 1), Line(b.pk, 1)], [Line(b.pk, 1), Line(a.pk, 1)]) * 10
    ]
    results = run_concurrently(calls)
    assert all(getattr(r, "reserved", False) for r in results), results
    assert stock_of(a) == (100, 20) and stock_of(b) == (100, 20)


@pytest.mark.django_db(transaction=True)
def test_a_release_racing_an_uncommitted_reservation_still_releases_it():
    product = services.product_create(sku="RACE", name="Race", price=Decimal("1.00"), stock=5)
    order_id = uuid.uuid4()
    released = while_uncommitted(  # the release waits on the reservation's uncommitted row
        lambda: services.stock_reserve(order_id=order_id, lines=[Line(product.pk, 2)]),
        lambda: services.stock_release(order_id=order_id),
    )
    assert released.status == StockReservation.Status.RELEASED
    assert stock_of(product) == (5, 0)
