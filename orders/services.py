"""Commands of the orders context."""

import hashlib
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any
from uuid import UUID

from django.core.exceptions import ValidationError
from django.db import IntegrityError, connections, router, transaction

from inventory.messages import Line
from saga import services as sagas
from saga.messaging import Message, publish_message, published_together

from . import selectors
from .messages import (
    OrderAwaitingAcceptance,
    OrderCancelled,
    OrderConfirmed,
    OrderCreated,
    OrderItem,
    OrderRejected,
)
from .models import Order, OrderLine, ProductPrice
from .saga_data import PlaceOrderData

PLACE_ORDER = "place_order"
ACCEPTED = "fulfillment.accepted"
CANCELLED_REASONS = {
    Order.Reason.ACCEPTANCE_TIMEOUT,
    Order.Reason.CANCELLED_BY_CUSTOMER,
    Order.Reason.CANCELLED_BY_OPERATOR,
}
# Allowed moves of an order's status; anything else is a bug and raises.
TRANSITIONS: dict[str, set[str]] = {
    Order.Status.PENDING: {
        Order.Status.AWAITING_ACCEPTANCE,
        Order.Status.CONFIRMED,
        Order.Status.REJECTED,
        Order.Status.CANCELLED,
    },
    Order.Status.AWAITING_ACCEPTANCE: {Order.Status.CONFIRMED, Order.Status.REJECTED, Order.Status.CANCELLED},
}


class IdempotencyConflict(Exception):
    """The Idempotency-Key was already used for a different request."""


class OrderStateConflict(Exception):
    """The order's status does not allow the request (e.g. accepting an order not waiting)."""


@dataclass(frozen=True)
class ItemRequest:
    quantity: int
    product_id: UUID | None = None
    sku: str | None = None


@dataclass(frozen=True)
class PlacedOrder:
    order: Order
    created: bool


def order_place(
    *,
    customer_id: UUID,
    items: list[ItemRequest],
    amount: Decimal | None = None,
    fulfillment: str = Order.Fulfillment.PICKUP,
    idempotency_key: str | None = None,
    request_body: Any = None,
) -> PlacedOrder:
    """Create a PENDING order and start its place-order saga, in one transaction. With an
    idempotency key, a repeat of the same request returns the first order (even when both arrive
    at the same moment); another request with it conflicts."""
    fingerprint = _fingerprint(request_body) if idempotency_key else ""
    try:
        with transaction.atomic(), published_together():
            lines = _priced_lines(items)  # in the order's transaction: no commit of its own
            total = sum((line.unit_price * line.quantity for line in lines), Decimal("0.00")) if lines else amount
            order = Order(  # its id is known before it is written: the saga starts with it
                customer_id=customer_id,
                total=total,
                fulfillment=fulfillment,
                idempotency_key=idempotency_key,
                request_fingerprint=fingerprint,
            )
            order.saga_id = _start_saga(order, lines)
            order.save(force_insert=True)
            _announce(order, _created(order, lines))
            for line in lines:
                line.order = order
            OrderLine.objects.bulk_create(lines)
    except IntegrityError:
        if idempotency_key is None:
            raise
        return PlacedOrder(order=_replayed(idempotency_key, fingerprint), created=False)
    return PlacedOrder(order=order, created=True)


def order_accept(*, order_id: UUID) -> Order:
    """The courier accepted a delivery order: its saga goes on to confirm it, now or, if it has
    not reached its wait yet, as soon as it does."""
    order = Order.objects.get(pk=order_id)
    if not sagas.saga_signal(saga_id=_saga_of(order), event=ACCEPTED):
        raise OrderStateConflict(f"order {order_id} is {order.status} and cannot wait for acceptance")
    return order


def order_cancel(*, order_id: UUID) -> Order:
    """The customer cancels: the saga rolls back and the order ends CANCELLED."""
    order = Order.objects.get(pk=order_id)
    cancellable = order.status in (Order.Status.PENDING, Order.Status.AWAITING_ACCEPTANCE)
    if not cancellable or not sagas.saga_cancel(saga_id=_saga_of(order), reason=Order.Reason.CANCELLED_BY_CUSTOMER):
        raise OrderStateConflict(f"order {order_id} is {order.status} and can no longer be cancelled")
    return order


def order_accepted_by_courier(*, order_id: UUID) -> bool:
    """`fulfillment.accepted` from Kafka: like the HTTP accept, but one that is of no use (a
    finished order, an expired wait) is ignored rather than refused. False if it was of no use."""
    order = Order.objects.filter(pk=order_id).first()
    if order is None:
        raise OrderStateConflict(f"no order {order_id}")
    return sagas.saga_signal(saga_id=_saga_of(order), event=ACCEPTED)


def _saga_of(order: Order) -> UUID:
    if order.saga_id is None:  # only inside order_place's transaction, which nobody else sees
        raise OrderStateConflict(f"order {order.pk} has no saga")
    return order.saga_id


# --- transitions made by the place-order saga, inside its step's transaction ---


def order_await_acceptance(*, order_id: UUID) -> Order:
    return _transition(order_id, Order.Status.AWAITING_ACCEPTANCE)


def order_confirm(*, order_id: UUID) -> Order:
    return _transition(order_id, Order.Status.CONFIRMED)


def order_close(*, order_id: UUID, reason: str) -> Order:
    """The saga rolled back: the order is CANCELLED (timeout, customer, operator) or REJECTED (refusals)."""
    status = Order.Status.CANCELLED if reason in CANCELLED_REASONS else Order.Status.REJECTED
    return _transition(order_id, status, reason=reason)


def _transition(order_id: UUID, status: str, reason: str | None = None) -> Order:
    order = Order.objects.select_for_update().get(pk=order_id)
    if order.status == status:
        return order  # a replayed step
    if status not in TRANSITIONS.get(order.status, set()):
        raise OrderStateConflict(f"order {order_id} cannot go from {order.status} to {status}")
    order.status, order.reason = status, reason
    order.save(update_fields=["status", "reason", "updated_at"])
    _announce(order, _moved(order))
    return order


def _announce(order: Order, event: Message) -> None:
    publish_message(event, key=order.pk, correlation_id=order.saga_id)


def _created(order: Order, lines: list[OrderLine]) -> OrderCreated:
    items = tuple(OrderItem(line.product_id, line.sku, line.quantity, line.unit_price) for line in lines)
    return OrderCreated(order.pk, order.customer_id, order.total, order.fulfillment, items)


def _moved(order: Order) -> Message:
    """The event announcing the order's new status."""
    match order.status:
        case Order.Status.AWAITING_ACCEPTANCE:
            return OrderAwaitingAcceptance(order.pk)
        case Order.Status.CONFIRMED:
            return OrderConfirmed(order.pk, order.total)
        case Order.Status.REJECTED:
            return OrderRejected(order.pk, order.reason or "")
        case _:
            return OrderCancelled(order.pk, order.reason or "")


def _start_saga(order: Order, lines: list[OrderLine]) -> UUID:
    data = PlaceOrderData(
        order_id=order.pk,
        customer_id=order.customer_id,
        total=order.total,
        fulfillment=order.fulfillment,
        lines=tuple(Line(product_id=line.product_id, quantity=line.quantity) for line in lines),
    )
    # The engine records the id of the HTTP request being served (request_id) with the saga.
    saga = sagas.saga_start(name=PLACE_ORDER, aggregate_id=order.pk, data=data.to_data())
    return saga.id


def _replayed(idempotency_key: str, fingerprint: str) -> Order:
    first = Order.objects.get(idempotency_key=idempotency_key)
    if first.request_fingerprint != fingerprint:
        raise IdempotencyConflict("This Idempotency-Key was used for a different request.")
    return first


def _priced_lines(items: list[ItemRequest]) -> list[OrderLine]:
    """One line per product, in the order of its first mention: items naming the same product,
    by id or by sku, add up (as in a cart), so an order never lists a product twice."""
    by_id = selectors.priced_products_by_ids(ids={i.product_id for i in items if i.product_id})
    by_sku = selectors.priced_products_by_skus(skus={i.sku for i in items if i.sku})
    lines: dict[UUID, OrderLine] = {}
    errors = []
    for position, item in enumerate(items):
        product = by_id.get(item.product_id) if item.product_id else by_sku.get(item.sku or "")
        if product is None:
            errors.append(f"item {position}: no product {item.product_id or item.sku}")
            continue
        line = lines.setdefault(
            product.id, OrderLine(product_id=product.id, sku=product.sku, quantity=0, unit_price=product.price)
        )
        line.quantity += item.quantity
    if errors:
        raise ValidationError({"items": errors})
    # At most MAX_ITEMS items of MAX_QUANTITY each: a merged line stays far within its column.
    return list(lines.values())


def _fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


# --- the price list (SHOP_TOPOLOGY=services): inventory's products as their events tell them ---


def product_price_keep(*, product: selectors.PricedProduct, version: int, event_id: UUID) -> bool:
    """What a product.created / product.updated event told, unless the price list already has
    this version of the product or a newer one, or its deletion (an event delivered again, or
    late). True if it changed the price list."""
    row = ProductPrice(product_id=product.id, sku=product.sku, price=product.price, version=version, event_id=event_id)
    return _price_list_write(
        row,
        changes="sku = EXCLUDED.sku, price = EXCLUDED.price, version = EXCLUDED.version",
        unless_kept="kept.version >= EXCLUDED.version",
    )


def product_price_delete(*, product_id: UUID, event_id: UUID) -> bool:
    """A product.deleted event: the product is no longer orderable, for good (a tombstone, even
    when its deletion comes before its creation). True if it changed the price list."""
    row = ProductPrice(product_id=product_id, sku="", price=Decimal("0.00"), version=0, deleted=True, event_id=event_id)
    return _price_list_write(row, changes="deleted = true", unless_kept="false")


def _price_list_write(row: ProductPrice, *, changes: str, unless_kept: str) -> bool:
    """Insert the row, or apply `changes` to the one kept unless that one is deleted or
    `unless_kept` holds: one statement, so two deliveries of one product's events at once (a
    consumer group rebalancing) cannot interleave a read and a write."""
    table = ProductPrice._meta.db_table
    with connections[router.db_for_write(ProductPrice)].cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} AS kept (product_id, sku, price, version, deleted, event_id, updated_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, now())"
            f" ON CONFLICT (product_id) DO UPDATE SET {changes},"
            " event_id = EXCLUDED.event_id, updated_at = EXCLUDED.updated_at"
            f" WHERE NOT kept.deleted AND NOT ({unless_kept})",
            [row.product_id, row.sku, row.price, row.version, row.deleted, row.event_id],
        )
        return cursor.rowcount == 1
