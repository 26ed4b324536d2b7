"""Commands of the payments context: authorize, void and capture the payment of an order.

Each command is idempotent per order: the `Payment` row records what the provider said, so a
second call returns the first answer. A provider call whose transaction then rolls back (a later
error in the same saga step, a crash) is made again on retry, with the same idempotency key, so
the provider treats it as the same request.
"""

from dataclasses import dataclass
from decimal import Decimal
from uuid import UUID

from django.db import transaction

from saga.messaging import publish_status

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
    answer = gateway().authorize(order_id=order_id, amount=amount, idempotency_key=f"{order_id}:authorize")
    payment, created = Payment.objects.get_or_create(
        pk=order_id,
        defaults={
            "customer_id": customer_id,
            "amount": amount,
            "status": Payment.Status.AUTHORIZED if answer.approved else Payment.Status.DECLINED,
            "provider_reference": answer.reference,
            "reason": "" if answer.approved else answer.decline_reason or PAYMENT_DECLINED,
        },
    )
    if created:
        _announce(payment)
    return _result(payment)


@transaction.atomic
def payment_void(*, order_id: UUID) -> PaymentResult:
    """Compensation of payment_authorize; voiding an unknown order leaves a tombstone."""
    payment = Payment.objects.select_for_update().filter(pk=order_id).first()
    if payment is None:
        payment, created = Payment.objects.get_or_create(
            pk=order_id, defaults={"amount": 0, "status": Payment.Status.VOIDED}
        )
        if created:
            _announce(payment)
            return _result(payment)
        # An authorization committed while we looked: void it like any other.
        payment = Payment.objects.select_for_update().get(pk=order_id)
    if payment.status == Payment.Status.AUTHORIZED:
        gateway().void(reference=payment.provider_reference, idempotency_key=f"{order_id}:void")
        _set_status(payment, Payment.Status.VOIDED)
    return _result(payment)


@transaction.atomic
def payment_capture(*, order_id: UUID) -> PaymentResult:
    payment = Payment.objects.select_for_update().filter(pk=order_id).first()
    if payment is None or not _result(payment).authorized:
        raise PaymentNotAuthorized(f"order {order_id} has no authorized payment")
    if payment.status == Payment.Status.AUTHORIZED:
        gateway().capture(reference=payment.provider_reference, idempotency_key=f"{order_id}:capture")
        _set_status(payment, Payment.Status.CAPTURED)
    return _result(payment)


def _set_status(payment: Payment, status: str) -> None:
    payment.status = status
    payment.save(update_fields=["status", "updated_at"])
    _announce(payment)


_EVENTS: dict[str, str] = {
    Payment.Status.AUTHORIZED: "payment.authorized",
    Payment.Status.DECLINED: "payment.declined",
    Payment.Status.VOIDED: "payment.voided",
    Payment.Status.CAPTURED: "payment.captured",
}


def _announce(payment: Payment) -> None:
    payload = {"order_id": payment.order_id, "customer_id": payment.customer_id, "amount": payment.amount}
    publish_status(types=_EVENTS, status=payment.status, key=payment.order_id, payload=payload, reason=payment.reason)


def _result(payment: Payment) -> PaymentResult:
    return PaymentResult(status=payment.status, reason=payment.reason)
