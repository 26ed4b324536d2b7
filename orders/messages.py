"""The messages of the orders context, one class per type (see saga.messaging.messages): what it
sends on order_events (key: the order id), and the courier's acceptance it reads from
fulfillment_events."""

from dataclasses import dataclass
from decimal import Decimal
from typing import ClassVar
from uuid import UUID


@dataclass(frozen=True)
class OrderItem:
    product_id: UUID
    sku: str
    quantity: int
    unit_price: Decimal


@dataclass(frozen=True)
class OrderCreated:
    TYPE: ClassVar[str] = "order.created"
    order_id: UUID
    customer_id: UUID
    total: Decimal
    fulfillment: str
    items: tuple[OrderItem, ...]


@dataclass(frozen=True)
class OrderAwaitingAcceptance:
    TYPE: ClassVar[str] = "order.awaiting_acceptance"
    order_id: UUID


@dataclass(frozen=True)
class OrderConfirmed:
    TYPE: ClassVar[str] = "order.confirmed"
    order_id: UUID
    total: Decimal


@dataclass(frozen=True)
class OrderRejected:
    """reason: OUT_OF_STOCK, INSUFFICIENT_CREDIT, PAYMENT_DECLINED or UNKNOWN_CUSTOMER."""

    TYPE: ClassVar[str] = "order.rejected"
    order_id: UUID
    reason: str


@dataclass(frozen=True)
class OrderCancelled:
    """reason: ACCEPTANCE_TIMEOUT, CANCELLED_BY_CUSTOMER or CANCELLED_BY_OPERATOR."""

    TYPE: ClassVar[str] = "order.cancelled"
    order_id: UUID
    reason: str


EVENTS = (OrderCreated, OrderAwaitingAcceptance, OrderConfirmed, OrderRejected, OrderCancelled)


@dataclass(frozen=True)
class FulfillmentAccepted:
    """Read from fulfillment_events: the courier took a delivery order."""

    TYPE: ClassVar[str] = "fulfillment.accepted"
    order_id: UUID
