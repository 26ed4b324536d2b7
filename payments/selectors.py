"""Queries of the payments context."""

from uuid import UUID

from .models import Payment


def payment_get(*, order_id: UUID) -> Payment | None:
    return Payment.objects.filter(pk=order_id).first()
