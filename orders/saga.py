"""The place-order saga: the whole flow on one screen.

1. reserve stock (orders with items)        undo: release stock          refusal: OUT_OF_STOCK
2. hold funds and authorize the payment     undo: void, release funds    refusal: INSUFFICIENT_CREDIT,
                                                                          UNKNOWN_CUSTOMER, PAYMENT_DECLINED
3. (delivery) wait for courier acceptance   at most SHOP_ACCEPTANCE_TIMEOUT, then ACCEPTANCE_TIMEOUT
4. confirm the order                        the pivot: from here on, only forward
5. capture the payment and commit stock     retried until it succeeds
An operator's compensate (before the pivot) rolls it back with CANCELLED_BY_OPERATOR.

Payments is called as a participant (`s.call`): in the worker, or through Kafka when it is listed
in SAGA_REMOTE_PARTICIPANTS; this definition is the same either way.
"""

from django.conf import settings

from customers import services as customers
from inventory import services as inventory
from saga.orchestration import Refusal, RetryPolicy, SagaDefinition, Step, StepContext, StepKind, Wait

from . import services as orders
from .models import Order
from .saga_data import PlaceOrderData

Context = StepContext[PlaceOrderData]  # what each function below is given

# A blocked customer's payments are declined.
_FUNDS_REFUSALS = {customers.CUSTOMER_BLOCKED: Order.Reason.PAYMENT_DECLINED}


def has_items(s: Context) -> bool:
    return bool(s.saga_data.lines)


def reserve_stock(s: Context) -> Refusal | None:
    order = s.saga_data
    result = inventory.stock_reserve(order_id=order.order_id, lines=order.lines)
    return None if result.reserved else Refusal(result.reason)


def release_stock(s: Context) -> None:
    inventory.stock_release(order_id=s.saga_data.order_id)


def authorize_payment(s: Context) -> Refusal | None:
    order = s.saga_data
    hold = customers.funds_hold(order_id=order.order_id, customer_id=order.customer_id, amount=order.total)
    if not hold.held:
        return Refusal(_FUNDS_REFUSALS.get(hold.reason, hold.reason))
    payment = s.call(
        "payments",
        "payment.authorize",
        order_id=str(order.order_id),
        customer_id=str(order.customer_id),
        amount=str(order.total),
    )
    return None if payment["authorized"] else Refusal(Order.Reason.PAYMENT_DECLINED)


def void_payment(s: Context) -> None:
    order = s.saga_data
    s.call("payments", "payment.void", order_id=str(order.order_id))
    customers.funds_release(order_id=order.order_id)


def is_delivery(s: Context) -> bool:
    return s.saga_data.fulfillment == Order.Fulfillment.DELIVERY


def acceptance_window(s: Context) -> float:
    return settings.SHOP_ACCEPTANCE_TIMEOUT


def mark_awaiting_acceptance(s: Context) -> None:
    orders.order_await_acceptance(order_id=s.saga_data.order_id)


def confirm_order(s: Context) -> None:
    orders.order_confirm(order_id=s.saga_data.order_id)


def capture_payment_and_commit_stock(s: Context) -> None:
    order = s.saga_data
    s.call("payments", "payment.capture", order_id=str(order.order_id))
    customers.funds_consume(order_id=order.order_id)
    if order.lines:
        inventory.stock_commit(order_id=order.order_id)


def close_order(s: Context, reason: str) -> None:
    orders.order_close(order_id=s.saga_data.order_id, reason=reason)


def acceptance_window_and_a_day(s: Context) -> float:
    # Whatever happens, an order is settled within a day of its acceptance window.
    return settings.SHOP_ACCEPTANCE_TIMEOUT + 24 * 3600


PLACE_ORDER = SagaDefinition(
    name=orders.PLACE_ORDER,
    version=1,
    data=PlaceOrderData,
    steps=(
        Step(
            "reserve_stock",
            reserve_stock,
            compensation=release_stock,
            when=has_items,
            failure_reason=Order.Reason.OUT_OF_STOCK,
        ),
        Step(
            "authorize_payment",
            authorize_payment,
            compensation=void_payment,
            failure_reason=Order.Reason.PAYMENT_DECLINED,
        ),
        Wait(
            "await_acceptance",
            event=orders.ACCEPTED,
            timeout=acceptance_window,
            when=is_delivery,
            on_enter=mark_awaiting_acceptance,
            timeout_reason=Order.Reason.ACCEPTANCE_TIMEOUT,
        ),
        # A local status change: errors are the database's, worth retrying until the deadline.
        Step(
            "confirm_order",
            confirm_order,
            kind=StepKind.PIVOT,
            retry=RetryPolicy(max_attempts=None, max_backoff=60),
        ),
        Step(
            "capture_payment_and_commit_stock",
            capture_payment_and_commit_stock,
            kind=StepKind.RETRIABLE,
            retry=RetryPolicy(max_attempts=None, max_backoff=300),
        ),
    ),
    on_compensated=close_order,
    operator_reason=Order.Reason.CANCELLED_BY_OPERATOR,
    deadline=acceptance_window_and_a_day,
)
