"""The payments context as a saga participant: its commands, with JSON arguments and results,
callable in the worker or, when payments is remote, served by `run_participant payments`."""

from decimal import Decimal
from typing import Any
from uuid import UUID

from saga.services import Participant

from . import services


def _answer(result: services.PaymentResult) -> dict[str, Any]:
    return {"status": result.status, "reason": result.reason, "authorized": result.authorized}


def authorize(*, order_id: str, customer_id: str, amount: str) -> dict[str, Any]:
    return _answer(
        services.payment_authorize(order_id=UUID(order_id), customer_id=UUID(customer_id), amount=Decimal(amount))
    )


def void(*, order_id: str) -> dict[str, Any]:
    return _answer(services.payment_void(order_id=UUID(order_id)))


def capture(*, order_id: str) -> dict[str, Any]:
    return _answer(services.payment_capture(order_id=UUID(order_id)))


PAYMENTS = Participant(
    name="payments",
    context="payment",
    commands={"payment.authorize": authorize, "payment.void": void, "payment.capture": capture},
)
