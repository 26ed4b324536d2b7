"""Commands of the payments context: authorize, void and capture the payment of an order.

Each command is idempotent per order: the `Payment` row records what the provider said, so a
second call returns the first answer and never calls the provider twice for the same thing.
"""
from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from django.db import transaction

from .gateway import gateway
from .models import Payment

PAYMENT_DECLINED = "PAYMENT_DECLINED"


class PaymentNotAuthorized(Exception):
    """Capturing a payment that was never authorized: a saga bug, never a refusal."""


@dataclass(frozen=True)
class PaymentResult:
    status: str
    reason: str = ""

    @property
    def authorized(self) -> bool:
        return self.status in (Payment.Status.AUTHORIZED, Payment.Status.CAPTURED)


@transaction.atomic
def payment_authorize(*, order_id: UUID, customer_id: UUID, amount: Decimal) -> PaymentResult:
    payment = Payment.objects.select_for_update().filter(pk=order_id).first()
    if payment is not None:
        return _result(payment)
    answer = gateway().authorize(order_id=order_id, amount=amount)
    payment, _ = Payment.objects.get_or_create(
        pk=order_id,
        defaults={
            "customer_id": customer_id,
            "amount": amount,
            "status": Payment.Status.AUTHORIZED if answer.approved else Payment.Status.DECLINED,
            "provider_reference": answer.reference,
            "reason": "" if answer.approved else answer.decline_reason or PAYMENT_DECLINED,
        },
    )
    return _result(payment)


@transaction.atomic
def payment_void(*, order_id: UUID) -> PaymentResult:
    """Compensation of payment_authorize; voiding an unknown order leaves a tombstone."""
    payment = Payment.objects.select_for_update().filter(pk=order_id).first()
    if payment is None:
        payment, _ = Payment.objects.get_or_create(pk=order_id, defaults={"amount": 0, "status": Payment.Status.VOIDED})
    elif payment.status == Payment.Status.AUTHORIZED:
        gateway().void(reference=payment.provider_reference)
        _set_status(payment, Payment.Status.VOIDED)
    return _result(payment)


@transaction.atomic
def payment_capture(*, order_id: UUID) -> PaymentResult:
    payment = Payment.objects.select_for_update().filter(pk=order_id).first()
    if payment is None or not _result(payment).authorized:
        raise PaymentNotAuthorized(f"order {order_id} has no authorized payment")
    if payment.status == Payment.Status.AUTHORIZED:
        gateway().capture(reference=payment.provider_reference)
        _set_status(payment, Payment.Status.CAPTURED)
    return _result(payment)


def _set_status(payment: Payment, status: str) -> None:
    payment.status = status
    payment.save(update_fields=["status", "updated_at"])


def _result(payment: Payment) -> PaymentResult:
    return PaymentResult(status=payment.status, reason=payment.reason)
