"""The payment provider of a chaos run, selected with PAYMENTS_GATEWAY=tools.chaos.gateway.LedgerGateway.

It answers like the sandbox (an amount ending in .66 is declined, everything else authorized), and
appends every call it receives to a ledger file (CHAOS_PROVIDER_LEDGER) shared by every process
of the run: a provider's own record, which outlives the participant processes the run kills. The
checker reads it to count, per order, what reached the provider: authorizations (by idempotency
key, so a repeated call with the same key counts once), voids and captures.
"""

import json
import os
import time
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

from payments.gateway import DECLINED_CENTS, Authorization

LEDGER = "CHAOS_PROVIDER_LEDGER"
REFERENCE_PREFIX = "chaos-"


class LedgerGateway:
    def authorize(self, *, order_id: UUID, amount: Decimal, idempotency_key: str) -> Authorization:
        approved = int(amount * 100) % 100 != DECLINED_CENTS
        _record("authorize", order_id, idempotency_key, approved=approved, amount=str(amount))
        if not approved:
            return Authorization(approved=False, decline_reason="PAYMENT_DECLINED")
        return Authorization(approved=True, reference=f"{REFERENCE_PREFIX}{order_id}")

    def void(self, *, order_id: UUID, authorization_key: str, idempotency_key: str) -> None:
        _record("void", order_id, idempotency_key, authorization_key=authorization_key)

    def capture(self, *, reference: str, idempotency_key: str) -> None:
        _record("capture", reference.removeprefix(REFERENCE_PREFIX), idempotency_key, reference=reference)


def _record(call: str, order_id: UUID | str, idempotency_key: str, **details: Any) -> None:
    """One line per call, written with O_APPEND in a single write: whole lines, in the order the
    provider saw them, whichever process wrote them."""
    line = {"call": call, "order_id": str(order_id), "key": idempotency_key, "at": time.time(), **details}
    fd = os.open(os.environ[LEDGER], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps(line) + "\n").encode())
    finally:
        os.close(fd)


def read_ledger(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
