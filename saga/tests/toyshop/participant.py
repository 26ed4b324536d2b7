"""The toy box as a saga participant: commands with JSON arguments and results, each one safe to
run twice (a compensation of nothing does nothing). Its facts go out with `publish`."""

from typing import Any

from django.db.models import F

from saga.messaging import publish
from saga.services import Participant

from .models import Reservation, Toy

EVENTS = {
    "toy.reserved": "order_id, sku, quantity",
    "toy.released": "order_id, sku, quantity",
    "toy.shipped": "order_id",
}


def reserve(*, order_id: str, sku: str, quantity: int) -> dict[str, Any]:
    if Reservation.objects.filter(order_id=order_id).exists():
        return {"reserved": True, "reason": ""}
    if not Toy.objects.filter(sku=sku, stock__gte=quantity).update(stock=F("stock") - quantity):
        return {"reserved": False, "reason": "OUT_OF_STOCK"}
    Reservation.objects.create(order_id=order_id, toy_id=sku, quantity=quantity)
    publish(type="toy.reserved", key=order_id, payload={"order_id": order_id, "sku": sku, "quantity": quantity})
    return {"reserved": True, "reason": ""}


def release(*, order_id: str) -> dict[str, Any]:
    reservation = Reservation.objects.filter(order_id=order_id, status=Reservation.Status.RESERVED).first()
    if reservation is not None:
        Toy.objects.filter(pk=reservation.toy_id).update(stock=F("stock") + reservation.quantity)
        Reservation.objects.filter(pk=order_id).update(status=Reservation.Status.RELEASED)
        publish(
            type="toy.released",
            key=order_id,
            payload={"order_id": order_id, "sku": reservation.toy_id, "quantity": reservation.quantity},
        )
    return {"released": reservation is not None}


def ship(*, order_id: str) -> dict[str, Any]:
    if Reservation.objects.filter(order_id=order_id, status=Reservation.Status.RESERVED).update(
        status=Reservation.Status.SHIPPED
    ):
        publish(type="toy.shipped", key=order_id, payload={"order_id": order_id})
    return {"shipped": True}


TOYBOX = Participant(
    name="toybox",
    context="toy",  # its commands travel on toy_commands, its events and replies on toy_events
    commands={"toy.reserve": reserve, "toy.release": release, "toy.ship": ship},
)
