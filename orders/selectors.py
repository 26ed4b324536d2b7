"""Queries of the orders context."""

from uuid import UUID

from django.db.models import QuerySet

from .models import Order


def order_list() -> QuerySet[Order]:
    return Order.objects.prefetch_related("lines")


def order_get(*, order_id: UUID) -> Order | None:
    return order_list().filter(pk=order_id).first()
