"""The toy box as a saga participant: typed commands and replies, each command safe to run twice
(a compensation of nothing does nothing). Its facts go out with `publish_message`."""

from dataclasses import dataclass
from typing import ClassVar

from django.db.models import F

from saga.messaging import publish_message
from saga.services import Participant

from .models import Reservation, Toy


@dataclass(frozen=True)
class ReserveToys:
    TYPE: ClassVar[str] = "toy.reserve"
    order_id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class ReleaseToys:
    TYPE: ClassVar[str] = "toy.release"
    order_id: str


@dataclass(frozen=True)
class ShipToys:
    TYPE: ClassVar[str] = "toy.ship"
    order_id: str


@dataclass(frozen=True)
class Done:
    """A command's reply: done, or refused and why."""

    done: bool
    reason: str = ""


@dataclass(frozen=True)
class ToysReserved:
    TYPE: ClassVar[str] = "toy.reserved"
    order_id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class ToysReleased:
    TYPE: ClassVar[str] = "toy.released"
    order_id: str
    sku: str
    quantity: int


@dataclass(frozen=True)
class ToysShipped:
    TYPE: ClassVar[str] = "toy.shipped"
    order_id: str


EVENTS = (ToysReserved, ToysReleased, ToysShipped)


def reserve(command: ReserveToys) -> Done:
    if Reservation.objects.filter(order_id=command.order_id).exists():
        return Done(True)
    if not Toy.objects.filter(sku=command.sku, stock__gte=command.quantity).update(stock=F("stock") - command.quantity):
        return Done(False, "OUT_OF_STOCK")
    Reservation.objects.create(order_id=command.order_id, toy_id=command.sku, quantity=command.quantity)
    publish_message(ToysReserved(command.order_id, command.sku, command.quantity), key=command.order_id)
    return Done(True)


def release(command: ReleaseToys) -> Done:
    order_id = command.order_id
    reservation = Reservation.objects.filter(order_id=order_id, status=Reservation.Status.RESERVED).first()
    if reservation is not None:
        Toy.objects.filter(pk=reservation.toy_id).update(stock=F("stock") + reservation.quantity)
        Reservation.objects.filter(pk=order_id).update(status=Reservation.Status.RELEASED)
        publish_message(ToysReleased(order_id, reservation.toy_id, reservation.quantity), key=order_id)
    return Done(reservation is not None)


def ship(command: ShipToys) -> Done:
    if Reservation.objects.filter(order_id=command.order_id, status=Reservation.Status.RESERVED).update(
        status=Reservation.Status.SHIPPED
    ):
        publish_message(ToysShipped(command.order_id), key=command.order_id)
    return Done(True)


# Its commands travel on toy_commands, its events and replies on toy_events.
TOYBOX = Participant(name="toybox", context="toy")
reserve_toys = TOYBOX.command(ReserveToys, Done, reserve)
release_toys = TOYBOX.command(ReleaseToys, Done, release)
ship_toys = TOYBOX.command(ShipToys, Done, ship)
