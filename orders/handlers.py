"""What the orders context does with the messages it reads (consume_events)."""

from saga.messaging import Envelope, MalformedMessage

from . import services
from .messages import FulfillmentAccepted


def on_fulfillment_accepted(message: Envelope) -> None:
    """The courier took a delivery order."""
    accepted = message.message(FulfillmentAccepted)
    try:
        services.order_accepted_by_courier(order_id=accepted.order_id)
    except services.OrderStateConflict as error:
        raise MalformedMessage(str(error)) from error
