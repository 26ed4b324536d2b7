"""Queries of the inventory context."""
from uuid import UUID

from django.db.models import QuerySet

from .models import Product, StockReservation


def product_list() -> QuerySet[Product]:
    return Product.objects.all()


def products_by_ids(*, ids: set[UUID]) -> dict[UUID, Product]:
    return {p.pk: p for p in Product.objects.filter(pk__in=ids)}


def products_by_skus(*, skus: set[str]) -> dict[str, Product]:
    return {p.sku: p for p in Product.objects.filter(sku__in=skus)}


def reservation_get(*, order_id: UUID) -> StockReservation | None:
    return StockReservation.objects.filter(pk=order_id).first()
