"""Queries of the customers context."""
from uuid import UUID

from django.db.models import QuerySet

from .models import Customer, FundsHold


def customer_list() -> QuerySet[Customer]:
    return Customer.objects.all()


def customer_get(*, customer_id: UUID) -> Customer | None:
    return Customer.objects.filter(pk=customer_id).first()


def hold_get(*, order_id: UUID) -> FundsHold | None:
    return FundsHold.objects.filter(pk=order_id).first()
