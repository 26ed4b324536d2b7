"""Commands of the inventory context: products and the stock reserved for orders.

Every stock command is idempotent per order: the `StockReservation` row of the order records what
was done. Product rows are locked in primary-key order, so concurrent reservations of
overlapping products queue up instead of deadlocking, and never take more than is available
(the CHECK constraints in the database stand behind that).
"""

from collections import Counter
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.db.models import Case, F, IntegerField, Value, When

from common.crud import model_delete, model_save, model_update
from common.databases import atomic_for, database_for
from saga.messaging import message_payload, publish
from saga.orchestration.records import participant_command, record_announce, record_locked_or_tombstone, record_move

from .messages import Line, ProductCreated, ProductDeleted, ProductEvent, ProductUpdated, StockReply
from .models import Product, StockReservation, StockReservationLine

OUT_OF_STOCK = "OUT_OF_STOCK"

_EDITABLE = {"sku", "name", "price", "stock"}


class StockNotReserved(Exception):
    """Committing stock that was never reserved (or was released): a saga bug, never a refusal."""


@atomic_for(Product)
def product_create(*, sku: str, name: str, price: Decimal, stock: int) -> Product:
    product = Product(sku=sku, name=name, price=price, stock=stock)
    return _announced(ProductCreated, model_save(product))


@atomic_for(Product)
def product_update(*, product_id: UUID, data: dict[str, Any]) -> Product:
    product = Product.objects.select_for_update().get(pk=product_id)
    updated = model_update(product, data=data, fields=_EDITABLE)
    return _announced(ProductUpdated, updated)


@atomic_for(Product)
def product_delete(*, product_id: UUID) -> None:
    """Raises StillReferenced when orders reserved (or tried to reserve) this product."""
    model_delete(Product.objects.get(pk=product_id))
    _publish(ProductDeleted(id=product_id), key=product_id)


@participant_command
def stock_reserve(*, order_id: UUID, lines: Iterable[Line]) -> StockReply:
    wanted = _merge(lines)
    # Locking the products first serializes reservations of the same order too.
    products = list(Product.objects.select_for_update().filter(pk__in=wanted).order_by("pk"))
    existing = StockReservation.objects.filter(pk=order_id).first()
    if existing is not None:
        return _result(existing)
    short = len(products) < len(wanted) or any(p.available < wanted[p.pk] for p in products)
    status = StockReservation.Status.REFUSED if short else StockReservation.Status.RESERVED
    reservation = StockReservation.objects.create(
        order_id=order_id, status=status, reason=OUT_OF_STOCK if short else ""
    )
    reservation.lines_at_hand = StockReservationLine.objects.bulk_create(
        StockReservationLine(reservation=reservation, product=p, quantity=wanted[p.pk]) for p in products
    )
    if not short:
        _adjust_products(wanted, reserved=+1)
    record_announce(reservation)
    return _result(reservation)


@participant_command
def stock_release(*, order_id: UUID) -> StockReply:
    """Compensation of stock_reserve. Releasing an unknown order leaves a tombstone, so a
    reservation that arrives late (reordered delivery) is refused instead of holding stock."""
    reservation = record_locked_or_tombstone(StockReservation, pk=order_id, tombstone=StockReservation.Status.RELEASED)
    if reservation.status == StockReservation.Status.RESERVED:
        _adjust_products(_locked_quantities(reservation), reserved=-1)
        record_move(reservation, StockReservation.Status.RELEASED)
    return _result(reservation)


@participant_command
def stock_commit(*, order_id: UUID) -> StockReply:
    """Reserved units leave the stock (the goods of a confirmed order are gone)."""
    reservation = StockReservation.objects.select_for_update().filter(pk=order_id).first()
    if reservation is None or not _result(reservation).reserved:
        raise StockNotReserved(f"order {order_id} has no stock reserved")
    if reservation.status == StockReservation.Status.RESERVED:
        _adjust_products(_locked_quantities(reservation), stock=-1, reserved=-1)
        record_move(reservation, StockReservation.Status.COMMITTED)
    return _result(reservation)


def _merge(lines: Iterable[Line]) -> Counter:
    wanted: Counter = Counter()
    for line in lines:
        wanted[line.product_id] += line.quantity
    return wanted


def _locked_quantities(reservation: StockReservation) -> dict[UUID, int]:
    """The reservation's quantities by product, with the products locked, in one statement (in
    the order of their ids, as every command locks products)."""
    lines = list(reservation.lines.select_related("product").select_for_update(of=("product",)).order_by("product_id"))
    reservation.lines_at_hand = lines
    return {line.product_id: line.quantity for line in lines}


def _adjust_products(quantities: Mapping[UUID, int], *, stock: int = 0, reserved: int = 0) -> None:
    """Add each product's quantity, times `stock` and `reserved` (+1, -1 or 0), to its counts:
    one statement for every product of the order."""
    quantity = Case(*(When(pk=pk, then=Value(n)) for pk, n in quantities.items()), output_field=IntegerField())
    changes = {name: F(name) + sign * quantity for name, sign in (("stock", stock), ("reserved", reserved)) if sign}
    Product.objects.filter(pk__in=list(quantities)).update(**changes)


def _announced(event: type[ProductEvent], product: Product) -> Product:
    _publish(event(product.pk, product.sku, product.name, product.price, product.stock), key=product.pk)
    return product


def _result(reservation: StockReservation) -> StockReply:
    return StockReply(status=reservation.status, reason=reservation.reason)


def _publish(event: ProductEvent | ProductDeleted, *, key: UUID) -> None:
    """Announce in the inventory's database, the transaction of the rows the event announces."""
    publish(type=event.TYPE, key=key, payload=message_payload(event), using=database_for(Product))
