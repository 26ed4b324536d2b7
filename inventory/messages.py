"""The messages of the inventory context, one class per type (see saga.messaging.messages).

Its saga commands come on inventory_commands; their replies (`<command>.succeeded` carrying a
`StockReply`) and its events go out on inventory_events, keyed by the order id (the catalogue's
own events: by the product id)."""

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar
from uuid import UUID


@dataclass(frozen=True)
class Line:
    """Units of one product in an order."""

    product_id: UUID
    quantity: int


# --- commands (participant.py serves them) ---


@dataclass(frozen=True)
class ReserveStock:
    TYPE: ClassVar[str] = "stock.reserve"
    order_id: UUID
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class ReleaseStock:
    """The compensation of ReserveStock."""

    TYPE: ClassVar[str] = "stock.release"
    order_id: UUID


@dataclass(frozen=True)
class CommitStock:
    """Reserved units leave the stock (a confirmed order)."""

    TYPE: ClassVar[str] = "stock.commit"
    order_id: UUID


@dataclass(frozen=True)
class StockReply:
    """What a stock command did: the reservation's status (RESERVED, REFUSED, RELEASED,
    COMMITTED), and why it was refused."""

    status: str
    reason: str = ""

    @property
    def reserved(self) -> bool:
        return self.status in ("RESERVED", "COMMITTED")


# --- events ---


@dataclass(frozen=True)
class ProductEvent:
    TYPE: ClassVar[str]  # each kind of it names its own
    id: UUID
    sku: str
    name: str
    price: Decimal
    stock: int
    version: int  # one more at each update of the product: a reader keeps the newest it saw


@dataclass(frozen=True)
class ProductCreated(ProductEvent):
    TYPE: ClassVar[str] = "product.created"


@dataclass(frozen=True)
class ProductUpdated(ProductEvent):
    TYPE: ClassVar[str] = "product.updated"


@dataclass(frozen=True)
class ProductDeleted:
    TYPE: ClassVar[str] = "product.deleted"
    id: UUID


@dataclass(frozen=True)
class StockEvent:
    TYPE: ClassVar[str]  # each kind of it names its own
    order_id: UUID
    lines: tuple[Line, ...]
    reason: str = ""


@dataclass(frozen=True)
class StockReserved(StockEvent):
    TYPE: ClassVar[str] = "stock.reserved"


@dataclass(frozen=True)
class StockReservationRefused(StockEvent):
    TYPE: ClassVar[str] = "stock.reservation_refused"


@dataclass(frozen=True)
class StockReleased(StockEvent):
    TYPE: ClassVar[str] = "stock.released"


@dataclass(frozen=True)
class StockCommitted(StockEvent):
    TYPE: ClassVar[str] = "stock.committed"


EVENTS = (
    ProductCreated,
    ProductUpdated,
    ProductDeleted,
    StockReserved,
    StockReservationRefused,
    StockReleased,
    StockCommitted,
)
