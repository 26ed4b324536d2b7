"""Queries of the customers context."""

from uuid import UUID

from django.db.models import QuerySet

from .models import Customer


def customer_list() -> QuerySet[Customer]:
    return Customer.objects.all()


def customer_get(*, customer_id: UUID) -> Customer | None:
    return Customer.objects.filter(pk=customer_id).first()
