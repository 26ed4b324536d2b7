"""Commands of the payments context: authorize, void and capture the payment of an order.

Each command is idempotent per order: the `Payment` row records what the provider said, so a
second call returns the first answer. A provider call whose transaction then rolls back (a later
error in the same saga step, a crash) is made again on retry, with the same idempotency key, so
the provider treats it as the same request.
"""

from decimal import Decimal
from uuid import UUID

from saga.orchestration.records import participant_command, record_create, record_locked_or_tombstone, record_move

from .gateway import gateway
from .messages import PaymentReply
from .models import Payment

PAYMENT_DECLINED = "PAYMENT_DECLINED"


class PaymentNotAuthorized(Exception):
    """Capturing a payment that was never authorized: a saga bug, never a refusal."""


@participant_command
def payment_authorize(*, order_id: UUID, customer_id: UUID, amount: Decimal) -> PaymentReply:
    payment = Payment.objects.select_for_update().filter(pk=order_id).first()
    if payment is not None:
        return _result(payment)
    answer = gateway().authorize(order_id=order_id, amount=amount, idempotency_key=_authorization_key(order_id))
    payment = record_create(
        Payment,
        pk=order_id,
        status=Payment.Status.AUTHORIZED if answer.approved else Payment.Status.DECLINED,
        customer_id=customer_id,
        amount=amount,
        provider_reference=answer.reference,
        reason="" if answer.approved else answer.decline_reason or PAYMENT_DECLINED,
    )
    return _result(payment)


@participant_command
def payment_void(*, order_id: UUID) -> PaymentReply:
    """Compensation of payment_authorize. With no record of the payment, the authorize call may
    still have reached the provider (its answer lost, or its transaction rolled back after it):
    the provider is asked to void by the call's idempotency key, and a tombstone is left."""
    payment = record_locked_or_tombstone(Payment, pk=order_id, tombstone=Payment.Status.VOIDED, amount=0)
    unknown = payment.status == Payment.Status.VOIDED and not payment.provider_reference
    if payment.status == Payment.Status.AUTHORIZED or unknown:
        gateway().void(
            order_id=order_id, authorization_key=_authorization_key(order_id), idempotency_key=f"{order_id}:void"
        )
    if payment.status == Payment.Status.AUTHORIZED:
        record_move(payment, Payment.Status.VOIDED)
    return _result(payment)


@participant_command
def payment_capture(*, order_id: UUID) -> PaymentReply:
    payment = Payment.objects.select_for_update().filter(pk=order_id).first()
    if payment is None or not _result(payment).authorized:
        raise PaymentNotAuthorized(f"order {order_id} has no authorized payment")
    if payment.status == Payment.Status.AUTHORIZED:
        gateway().capture(reference=payment.provider_reference, idempotency_key=f"{order_id}:capture")
        record_move(payment, Payment.Status.CAPTURED)
    return _result(payment)


def _authorization_key(order_id: UUID) -> str:
    return f"{order_id}:authorize"


def _result(payment: Payment) -> PaymentReply:
    return PaymentReply(status=payment.status, reason=payment.reason)
