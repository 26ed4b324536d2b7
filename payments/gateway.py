"""The payment provider sits outside our walls; this is the interface the payments context needs.

`PAYMENTS_GATEWAY` (a dotted path) selects the implementation. The default stands in for a real
provider's sandbox: like a card network's test numbers, an amount ending in .66 is declined;
every other amount is authorized.
"""

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol
from uuid import UUID

from django.conf import settings
from django.utils.module_loading import import_string


@dataclass(frozen=True)
class Authorization:
    approved: bool
    reference: str = ""
    decline_reason: str = ""


class PaymentGateway(Protocol):
    """Each call carries an idempotency key: a repeat of it (a retried saga step) must be
    answered as the first one was, as real providers do with such keys."""

    def authorize(self, *, order_id: UUID, amount: Decimal, idempotency_key: str) -> Authorization: ...
    def void(self, *, reference: str, idempotency_key: str) -> None: ...
    def capture(self, *, reference: str, idempotency_key: str) -> None: ...


DECLINED_CENTS = 66


class SandboxGateway:
    """The reference is derived from the order, so a retried call gets the same one."""

    def authorize(self, *, order_id: UUID, amount: Decimal, idempotency_key: str) -> Authorization:
        if int(amount * 100) % 100 == DECLINED_CENTS:
            return Authorization(approved=False, decline_reason="PAYMENT_DECLINED")
        return Authorization(approved=True, reference=f"sandbox-{uuid.uuid5(uuid.NAMESPACE_OID, str(order_id))}")

    def void(self, *, reference: str, idempotency_key: str) -> None:
        return None

    def capture(self, *, reference: str, idempotency_key: str) -> None:
        return None


def gateway() -> PaymentGateway:
    return import_string(getattr(settings, "PAYMENTS_GATEWAY", "payments.gateway.SandboxGateway"))()
