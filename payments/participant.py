"""The payments context as a saga participant: its commands, served in the worker or, when
payments is remote, by `run_participant payments`. Steps call them as `payments.authorize(s, ...)`."""

from saga.services import Participant

from . import services
from .messages import AuthorizePayment, CapturePayment, PaymentReply, VoidPayment


def _authorize(command: AuthorizePayment) -> PaymentReply:
    return services.payment_authorize(order_id=command.order_id, customer_id=command.customer_id, amount=command.amount)


def _void(command: VoidPayment) -> PaymentReply:
    return services.payment_void(order_id=command.order_id)


def _capture(command: CapturePayment) -> PaymentReply:
    return services.payment_capture(order_id=command.order_id)


PAYMENTS = Participant(name="payments", context="payment")
authorize = PAYMENTS.command(AuthorizePayment, PaymentReply, _authorize)
void = PAYMENTS.command(VoidPayment, PaymentReply, _void)
capture = PAYMENTS.command(CapturePayment, PaymentReply, _capture)
