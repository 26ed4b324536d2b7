"""The toy-order saga: reserve the toys, wait for a courier if the order is delivered, ship."""

from dataclasses import dataclass
from typing import ClassVar
from uuid import UUID, uuid4

from django.db import transaction

from saga.messaging import Envelope, MalformedMessage
from saga.orchestration import Refusal, SagaDefinition, Step, StepContext, StepKind, Wait
from saga.selectors import saga_list
from saga.services import saga_signal, saga_start

from . import participant as toybox

COURIER_BOOKED = "courier.booked"


@dataclass(frozen=True)
class CourierBooked:
    TYPE: ClassVar[str] = COURIER_BOOKED
    order_id: UUID


def reserve_toys(ctx: StepContext) -> Refusal | None:
    data = ctx.data
    reply = toybox.reserve_toys(ctx, toybox.ReserveToys(data["order_id"], data["sku"], data["quantity"]))
    return None if reply.done else Refusal(reply.reason)


def release_toys(ctx: StepContext) -> None:
    toybox.release_toys(ctx, toybox.ReleaseToys(ctx.data["order_id"]))


def is_delivered(ctx: StepContext) -> bool:
    return ctx.data["delivery"]


def courier_time(ctx: StepContext) -> float:
    return 3600.0


def ship(ctx: StepContext) -> None:
    toybox.ship_toys(ctx, toybox.ShipToys(ctx.data["order_id"]))


TOY_ORDER = SagaDefinition(
    name="toy_order",
    version=1,
    steps=(
        Step("reserve_toys", reserve_toys, compensation=release_toys, failure_reason="TOYS_UNAVAILABLE"),
        Wait(
            "await_courier", event=COURIER_BOOKED, timeout=courier_time, timeout_reason="NO_COURIER", when=is_delivered
        ),
        Step("ship", ship, kind=StepKind.PIVOT),
    ),
)


def toy_order_place(*, sku: str, quantity: int, delivery: bool = False) -> UUID:
    """Start a toy order's saga; it moves once the transaction commits. Returns the order id."""
    order_id = uuid4()
    with transaction.atomic():
        saga_start(
            name="toy_order",
            aggregate_id=order_id,
            data={"order_id": str(order_id), "sku": sku, "quantity": quantity, "delivery": delivery},
        )
    return order_id


def on_courier_booked(message: Envelope) -> None:
    """`courier.booked` from Kafka (consume_events): the order's saga stops waiting."""
    order_id = message.message(CourierBooked).order_id
    saga = saga_list().filter(type=TOY_ORDER.name, aggregate_id=order_id).first()
    if saga is None:
        raise MalformedMessage(f"{message.type} is for an unknown toy order {order_id}")
    saga_signal(saga_id=saga.id, event=COURIER_BOOKED)
