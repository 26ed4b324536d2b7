"""The messages of the orders context: what it sends on order_events (key: the order id), and the
courier's acceptance it reads from fulfillment_events."""

from saga.messaging import Envelope, MalformedMessage

from . import services
from .models import Order

EVENTS = {
    "order.created": "order_id, customer_id, total, fulfillment, items[{product_id, sku, quantity, unit_price}]",
    "order.awaiting_acceptance": "order_id",
    "order.confirmed": "order_id, total",
    "order.rejected": f"order_id, reason ({' / '.join(sorted(set(Order.Reason) - services.CANCELLED_REASONS))})",
    "order.cancelled": f"order_id, reason ({' / '.join(sorted(services.CANCELLED_REASONS))})",
}


def on_fulfillment_accepted(message: Envelope) -> None:
    """`fulfillment.accepted` {order_id}: the courier took a delivery order."""
    try:
        services.order_accepted_by_courier(order_id=message.uuid_field("order_id"))
    except services.OrderStateConflict as error:
        raise MalformedMessage(str(error)) from error
