"""Inbound messages the orders context acts on."""
from saga.services import Envelope, MalformedMessage

from . import services


def on_fulfillment_accepted(message: Envelope) -> None:
    try:
        services.order_accepted_by_courier(order_id=message.uuid_field("order_id"))
    except services.OrderStateConflict as error:
        raise MalformedMessage(str(error)) from error
