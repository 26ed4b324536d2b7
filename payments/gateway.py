"""The payment provider sits outside our walls; this is the interface the payments context needs.

`PAYMENTS_GATEWAY` (a dotted path) selects the implementation. The default stands in for a real
provider: it authorizes every amount and hands out references.
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


class SandboxGateway:
    """Approves everything; the reference is derived from the order so retries agree with it."""

    def authorize(self, *, order_id: UUID, amount: Decimal, idempotency_key: str) -> Authorization:
        return Authorization(approved=True, reference=f"sandbox-{uuid.uuid5(uuid.NAMESPACE_OID, str(order_id))}")

    def void(self, *, reference: str, idempotency_key: str) -> None:
        return None

    def capture(self, *, reference: str, idempotency_key: str) -> None:
        return None


def gateway() -> PaymentGateway:
    return import_string(getattr(settings, "PAYMENTS_GATEWAY", "payments.gateway.SandboxGateway"))()
