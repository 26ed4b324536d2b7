"""Queries of the orders context."""

from collections import Counter
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol
from uuid import UUID

from django.conf import settings
from django.db.models import QuerySet

from inventory import selectors as inventory

from .models import Order, ProductPrice


@dataclass(frozen=True)
class PricedProduct:
    """A product as an order needs it: what it is called and what it costs."""

    id: UUID
    sku: str
    price: Decimal


def order_list() -> QuerySet[Order]:
    return Order.objects.prefetch_related("lines")


def order_get(*, order_id: UUID) -> Order | None:
    return order_list().filter(pk=order_id).first()


def price_list_in_use() -> bool:
    """Whether orders prices from its own price list, kept from inventory's events: when each
    context has its own database (SHOP_TOPOLOGY=services). In the monolith inventory's table is
    in the same database, always current, and read directly."""
    return settings.SHOP_TOPOLOGY == "services"


def priced_products_by_ids(*, ids: set[UUID]) -> dict[UUID, PricedProduct]:
    if price_list_in_use():
        return {p.id: p for p in _priced(_listed().filter(pk__in=ids))}
    return {pk: _current(product) for pk, product in inventory.products_by_ids(ids=ids).items()}


def priced_products_by_skus(*, skus: set[str]) -> dict[str, PricedProduct]:
    if price_list_in_use():
        # A sku two live rows claim (two products' events that traded it, told out of order)
        # names no product until the later event comes: never price an order with the wrong one.
        listed = _priced(_listed().filter(sku__in=skus))
        claims = Counter(p.sku for p in listed)
        return {p.sku: p for p in listed if claims[p.sku] == 1}
    return {sku: _current(product) for sku, product in inventory.products_by_skus(skus=skus).items()}


class _Product(Protocol):
    """Inventory's product, as far as a price goes (its model is inventory's own business)."""

    pk: UUID
    sku: str
    price: Decimal


def _current(product: _Product) -> PricedProduct:
    return PricedProduct(id=product.pk, sku=product.sku, price=product.price)


def _listed() -> QuerySet[ProductPrice]:
    return ProductPrice.objects.filter(deleted=False)


def _priced(rows: QuerySet[ProductPrice]) -> list[PricedProduct]:
    return [PricedProduct(id=row.product_id, sku=row.sku, price=row.price) for row in rows]
