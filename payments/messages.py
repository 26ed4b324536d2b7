"""The messages of the payments context, one class per type (see saga.messaging.messages).

Its saga commands come on payment_commands; their replies (`<command>.succeeded` carrying a
`PaymentReply`) and its events go out on payment_events, keyed by the order id."""

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar
from uuid import UUID

# --- commands (participant.py serves them) ---


@dataclass(frozen=True)
class AuthorizePayment:
    TYPE: ClassVar[str] = "payment.authorize"
    order_id: UUID
    customer_id: UUID
    amount: Decimal


@dataclass(frozen=True)
class VoidPayment:
    """The compensation of AuthorizePayment."""

    TYPE: ClassVar[str] = "payment.void"
    order_id: UUID


@dataclass(frozen=True)
class CapturePayment:
    TYPE: ClassVar[str] = "payment.capture"
    order_id: UUID


@dataclass(frozen=True)
class PaymentReply:
    """What a payment command did: the payment's status (AUTHORIZED, DECLINED, VOIDED, CAPTURED),
    and why it was declined."""

    status: str
    reason: str = ""

    @property
    def authorized(self) -> bool:
        return self.status in ("AUTHORIZED", "CAPTURED")


# --- events ---


@dataclass(frozen=True)
class PaymentEvent:
    TYPE: ClassVar[str]  # each kind of it names its own
    order_id: UUID
    customer_id: UUID | None
    amount: Decimal
    reason: str = ""


@dataclass(frozen=True)
class PaymentAuthorized(PaymentEvent):
    TYPE: ClassVar[str] = "payment.authorized"


@dataclass(frozen=True)
class PaymentDeclined(PaymentEvent):
    TYPE: ClassVar[str] = "payment.declined"


@dataclass(frozen=True)
class PaymentVoided(PaymentEvent):
    TYPE: ClassVar[str] = "payment.voided"


@dataclass(frozen=True)
class PaymentCaptured(PaymentEvent):
    TYPE: ClassVar[str] = "payment.captured"


EVENTS = (PaymentAuthorized, PaymentDeclined, PaymentVoided, PaymentCaptured)
