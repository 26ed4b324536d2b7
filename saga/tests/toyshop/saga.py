"""The toy-order saga: reserve the toys, wait for a courier if the order is delivered, ship."""

from uuid import UUID, uuid4

from django.db import transaction

from saga.messaging import Envelope, MalformedMessage
from saga.orchestration import Refusal, SagaDefinition, Step, StepContext, StepKind, Wait
from saga.selectors import saga_list
from saga.services import saga_signal, saga_start

COURIER_BOOKED = "courier.booked"


def reserve_toys(ctx: StepContext) -> Refusal | None:
    result = ctx.call(
        "toybox", "toy.reserve", order_id=ctx.data["order_id"], sku=ctx.data["sku"], quantity=ctx.data["quantity"]
    )
    return None if result["reserved"] else Refusal(result["reason"])


def release_toys(ctx: StepContext) -> None:
    ctx.call("toybox", "toy.release", order_id=ctx.data["order_id"])


def is_delivered(ctx: StepContext) -> bool:
    return ctx.data["delivery"]


def courier_time(ctx: StepContext) -> float:
    return 3600.0


def ship(ctx: StepContext) -> None:
    ctx.call("toybox", "toy.ship", order_id=ctx.data["order_id"])


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
    order_id = message.uuid_field("order_id")
    saga = saga_list().filter(type=TOY_ORDER.name, aggregate_id=order_id).first()
    if saga is None:
        raise MalformedMessage(f"{message.type} is for an unknown toy order {order_id}")
    saga_signal(saga_id=saga.id, event=COURIER_BOOKED)
