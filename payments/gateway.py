"""The payment provider sits outside our walls; this is the interface the payments context needs.

`PAYMENTS_GATEWAY` (a dotted path) selects the implementation. The default stands in for a real
provider's sandbox: like a card network's test numbers, an amount ending in .66 is declined;
every other amount is authorized.
"""

import uuid
from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar, Protocol
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

    def void(self, *, order_id: UUID, authorization_key: str, idempotency_key: str) -> None:
        """Void whatever was authorized under `authorization_key` (the authorize call's
        idempotency key), if anything was: also an authorization whose answer never reached us."""
        ...

    def capture(self, *, reference: str, idempotency_key: str) -> None: ...


DECLINED_CENTS = 66


class SandboxGateway:
    """Stands in for a provider's sandbox. Like a provider's dashboard, it keeps the latest calls
    it was asked (`calls`) and what stands authorized, for every instance in this process."""

    KEPT_CALLS = 1000  # a worker runs for months: its memory must not grow with every order
    calls: ClassVar[deque[tuple[str, UUID]]] = deque(maxlen=KEPT_CALLS)
    _authorized: ClassVar[dict[str, tuple[UUID, str]]] = {}  # authorization key -> (order, reference)

    def authorize(self, *, order_id: UUID, amount: Decimal, idempotency_key: str) -> Authorization:
        SandboxGateway.calls.append(("authorize", order_id))
        if int(amount * 100) % 100 == DECLINED_CENTS:
            return Authorization(approved=False, decline_reason="PAYMENT_DECLINED")
        # Derived from the order, so a repeated call gets the same reference.
        reference = f"sandbox-{uuid.uuid5(uuid.NAMESPACE_OID, str(order_id))}"
        self._authorized[idempotency_key] = (order_id, reference)
        return Authorization(approved=True, reference=reference)

    def void(self, *, order_id: UUID, authorization_key: str, idempotency_key: str) -> None:
        SandboxGateway.calls.append(("void", order_id))
        self._authorized.pop(authorization_key, None)

    def capture(self, *, reference: str, idempotency_key: str) -> None:
        for key, (order_id, authorized) in list(self._authorized.items()):
            if authorized == reference:
                SandboxGateway.calls.append(("capture", order_id))
                del self._authorized[key]

    @classmethod
    def authorized(cls) -> set[UUID]:
        """Orders with an authorization standing at the provider (neither voided nor captured)."""
        return {order_id for order_id, _ in cls._authorized.values()}


def gateway() -> PaymentGateway:
    return import_string(getattr(settings, "PAYMENTS_GATEWAY", "payments.gateway.SandboxGateway"))()
