"""The messages of the customers context, one class per type (see saga.messaging.messages).

Its saga commands come on customer_commands; their replies (`<command>.succeeded` carrying a
`FundsReply`) and its events go out on customer_events, keyed by the order id (the account's own
events: by the customer id)."""

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar
from uuid import UUID

# --- commands (participant.py serves them) ---


@dataclass(frozen=True)
class HoldFunds:
    TYPE: ClassVar[str] = "funds.hold"
    order_id: UUID
    customer_id: UUID
    amount: Decimal


@dataclass(frozen=True)
class ReleaseFunds:
    """The compensation of HoldFunds."""

    TYPE: ClassVar[str] = "funds.release"
    order_id: UUID


@dataclass(frozen=True)
class ConsumeFunds:
    """The held funds leave the balance (a confirmed order)."""

    TYPE: ClassVar[str] = "funds.consume"
    order_id: UUID


@dataclass(frozen=True)
class FundsReply:
    """What a funds command did: the hold's status (HELD, REFUSED, RELEASED, CONSUMED), and why
    it was refused."""

    status: str
    reason: str = ""

    @property
    def held(self) -> bool:
        return self.status in ("HELD", "CONSUMED")


# --- events ---


@dataclass(frozen=True)
class CustomerEvent:
    TYPE: ClassVar[str]  # each kind of it names its own
    id: UUID
    name: str
    email: str
    balance: Decimal
    blocked: bool


@dataclass(frozen=True)
class CustomerCreated(CustomerEvent):
    TYPE: ClassVar[str] = "customer.created"


@dataclass(frozen=True)
class CustomerUpdated(CustomerEvent):
    TYPE: ClassVar[str] = "customer.updated"


@dataclass(frozen=True)
class CustomerDeleted:
    TYPE: ClassVar[str] = "customer.deleted"
    id: UUID


@dataclass(frozen=True)
class FundsEvent:
    TYPE: ClassVar[str]  # each kind of it names its own
    order_id: UUID
    customer_id: UUID | None  # None: the hold was refused for an unknown customer
    amount: Decimal
    reason: str = ""


@dataclass(frozen=True)
class FundsHeld(FundsEvent):
    TYPE: ClassVar[str] = "funds.held"


@dataclass(frozen=True)
class FundsHoldRefused(FundsEvent):
    TYPE: ClassVar[str] = "funds.hold_refused"


@dataclass(frozen=True)
class FundsReleased(FundsEvent):
    TYPE: ClassVar[str] = "funds.released"


@dataclass(frozen=True)
class FundsConsumed(FundsEvent):
    TYPE: ClassVar[str] = "funds.consumed"


EVENTS = (CustomerCreated, CustomerUpdated, CustomerDeleted, FundsHeld, FundsHoldRefused, FundsReleased, FundsConsumed)
