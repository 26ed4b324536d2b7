"""Queries of the inventory context."""

from uuid import UUID

from django.db.models import QuerySet

from .models import Product


def product_list() -> QuerySet[Product]:
    return Product.objects.all()


def products_by_ids(*, ids: set[UUID]) -> dict[UUID, Product]:
    return {p.pk: p for p in Product.objects.filter(pk__in=ids)}


def products_by_skus(*, skus: set[str]) -> dict[str, Product]:
    return {p.sku: p for p in Product.objects.filter(sku__in=skus)}
