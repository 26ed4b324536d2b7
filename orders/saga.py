"""The place-order saga, version 2: the whole flow on one screen, one participant per step.

   step                      participant   undo                  refusal
1. reserve_stock             inventory     release_stock         OUT_OF_STOCK (orders with items only)
2. hold_funds                customers     release_funds         INSUFFICIENT_CREDIT, UNKNOWN_CUSTOMER,
                                                                  PAYMENT_DECLINED (customer blocked)
3. authorize_payment         payments      void_payment          PAYMENT_DECLINED
4. await_acceptance          (courier)     -                     ACCEPTANCE_TIMEOUT (delivery orders only)
5. confirm_order (pivot)     orders        from here on, only forward
6. capture_payment           payments      retried until it succeeds
7. consume_funds             customers     retried until it succeeds
8. commit_stock              inventory     retried until it succeeds (orders with items only)
An operator's compensate (before the pivot) rolls it back with CANCELLED_BY_OPERATOR.

Each participant is called through its typed commands (`inventory.reserve(s, ReserveStock(...))`):
in the worker, or through Kafka when it is listed in SAGA_REMOTE_PARTICIPANTS; this definition is
the same either way. Version 1 (saga_v1.py) stays registered for the sagas started under it.
"""

from django.conf import settings

from customers import participant as customers
from customers.messages import ConsumeFunds, HoldFunds, ReleaseFunds
from customers.services import CUSTOMER_BLOCKED
from inventory import participant as inventory
from inventory.messages import CommitStock, ReleaseStock, ReserveStock
from payments import participant as payments
from payments.messages import AuthorizePayment, CapturePayment, VoidPayment
from saga.orchestration import Refusal, RetryPolicy, SagaDefinition, Step, StepContext, StepKind, Wait

from . import services as orders
from .models import Order
from .saga_data import PlaceOrderData

Context = StepContext[PlaceOrderData]  # what each function below is given

# A blocked customer's payments are declined.
_FUNDS_REFUSALS = {CUSTOMER_BLOCKED: Order.Reason.PAYMENT_DECLINED}
# After the pivot: retried for ever, with backoff, until the participant is back.
UNTIL_DONE = RetryPolicy(max_attempts=None, max_backoff=300)


def has_items(s: Context) -> bool:
    return bool(s.saga_data.lines)


def reserve_stock(s: Context) -> Refusal | None:
    order = s.saga_data
    reply = inventory.reserve(s, ReserveStock(order_id=order.order_id, lines=order.lines))
    return None if reply.reserved else Refusal(reply.reason)


def release_stock(s: Context) -> None:
    inventory.release(s, ReleaseStock(order_id=s.saga_data.order_id))


def hold_funds(s: Context) -> Refusal | None:
    order = s.saga_data
    reply = customers.hold(s, HoldFunds(order_id=order.order_id, customer_id=order.customer_id, amount=order.total))
    return None if reply.held else Refusal(_FUNDS_REFUSALS.get(reply.reason, reply.reason))


def release_funds(s: Context) -> None:
    customers.release(s, ReleaseFunds(order_id=s.saga_data.order_id))


def authorize_payment(s: Context) -> Refusal | None:
    order = s.saga_data
    command = AuthorizePayment(order_id=order.order_id, customer_id=order.customer_id, amount=order.total)
    return None if payments.authorize(s, command).authorized else Refusal(Order.Reason.PAYMENT_DECLINED)


def void_payment(s: Context) -> None:
    payments.void(s, VoidPayment(order_id=s.saga_data.order_id))


def is_delivery(s: Context) -> bool:
    return s.saga_data.fulfillment == Order.Fulfillment.DELIVERY


def acceptance_window(s: Context) -> float:
    return settings.SHOP_ACCEPTANCE_TIMEOUT


def mark_awaiting_acceptance(s: Context) -> None:
    orders.order_await_acceptance(order_id=s.saga_data.order_id)


def confirm_order(s: Context) -> None:
    orders.order_confirm(order_id=s.saga_data.order_id)


def capture_payment(s: Context) -> None:
    payments.capture(s, CapturePayment(order_id=s.saga_data.order_id))


def consume_funds(s: Context) -> None:
    customers.consume(s, ConsumeFunds(order_id=s.saga_data.order_id))


def commit_stock(s: Context) -> None:
    inventory.commit(s, CommitStock(order_id=s.saga_data.order_id))


def close_order(s: Context, reason: str) -> None:
    orders.order_close(order_id=s.saga_data.order_id, reason=reason)


def acceptance_window_and_a_day(s: Context) -> float:
    # Whatever happens, an order is settled within a day of its acceptance window.
    return settings.SHOP_ACCEPTANCE_TIMEOUT + 24 * 3600


Reason = Order.Reason

PLACE_ORDER = SagaDefinition(
    name=orders.PLACE_ORDER,
    version=2,
    data=PlaceOrderData,
    steps=(
        Step("reserve_stock", reserve_stock, release_stock, when=has_items, failure_reason=Reason.OUT_OF_STOCK),
        Step("hold_funds", hold_funds, release_funds, failure_reason=Reason.PAYMENT_DECLINED),
        Step("authorize_payment", authorize_payment, void_payment, failure_reason=Reason.PAYMENT_DECLINED),
        Wait(
            "await_acceptance",
            event=orders.ACCEPTED,
            timeout=acceptance_window,
            when=is_delivery,
            on_enter=mark_awaiting_acceptance,
            timeout_reason=Reason.ACCEPTANCE_TIMEOUT,
        ),
        # A local status change: errors are the database's, worth retrying until the deadline.
        Step("confirm_order", confirm_order, kind=StepKind.PIVOT, retry=RetryPolicy(max_attempts=None, max_backoff=60)),
        Step("capture_payment", capture_payment, kind=StepKind.RETRIABLE, retry=UNTIL_DONE),
        Step("consume_funds", consume_funds, kind=StepKind.RETRIABLE, retry=UNTIL_DONE),
        Step("commit_stock", commit_stock, kind=StepKind.RETRIABLE, retry=UNTIL_DONE, when=has_items),
    ),
    on_compensated=close_order,
    operator_reason=Reason.CANCELLED_BY_OPERATOR,
    deadline=acceptance_window_and_a_day,
)
