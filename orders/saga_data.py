"""The place-order saga's data: what the saga knows of its order, typed."""

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Self
from uuid import UUID

from inventory.messages import Line


@dataclass(frozen=True)
class PlaceOrderData:
    """What the saga knows of its order, stored as JSON in the saga instance."""

    order_id: UUID
    customer_id: UUID
    total: Decimal
    fulfillment: str
    lines: tuple[Line, ...]

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Self:
        # Reads only its own keys: the engine keeps some of its own beside them (`_events`, ...).
        return cls(
            order_id=UUID(data["order_id"]),
            customer_id=UUID(data["customer_id"]),
            total=Decimal(data["total"]),
            fulfillment=data["fulfillment"],
            lines=tuple(Line(UUID(line["product_id"]), line["quantity"]) for line in data["lines"]),
        )

    def to_data(self) -> dict[str, Any]:
        return {
            "order_id": str(self.order_id),
            "customer_id": str(self.customer_id),
            "total": str(self.total),
            "fulfillment": self.fulfillment,
            "lines": [{"product_id": str(line.product_id), "quantity": line.quantity} for line in self.lines],
        }
