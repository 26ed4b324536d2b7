"""The place-order saga: the whole flow on one screen.

1. reserve stock (orders with items)        undo: release stock          refusal: OUT_OF_STOCK
2. hold funds and authorize the payment     undo: void, release funds    refusal: INSUFFICIENT_CREDIT,
                                                                          UNKNOWN_CUSTOMER, PAYMENT_DECLINED
3. (delivery) wait for courier acceptance   at most SHOP_ACCEPTANCE_TIMEOUT, then ACCEPTANCE_TIMEOUT
4. confirm the order                        the pivot: from here on, only forward
5. capture the payment and commit stock     retried until it succeeds

Payments is called as a participant (`s.call`): in the worker, or through Kafka when it is listed
in SAGA_REMOTE_PARTICIPANTS; this definition is the same either way.
"""
from decimal import Decimal
from uuid import UUID

from django.conf import settings

from customers import services as customers
from inventory import services as inventory
from saga.orchestration import Refusal, RetryPolicy, SagaDefinition, Step, StepContext, StepKind, Wait

from . import services as orders
from .models import Order

# A blocked customer's payments are declined.
_FUNDS_REFUSALS = {customers.CUSTOMER_BLOCKED: Order.Reason.PAYMENT_DECLINED}


def _order(s: StepContext) -> UUID:
    return UUID(s.data["order_id"])


def reserve_stock(s: StepContext) -> Refusal | None:
    lines = [inventory.Line(UUID(line["product_id"]), line["quantity"]) for line in s.data["lines"]]
    result = inventory.stock_reserve(order_id=_order(s), lines=lines)
    return None if result.reserved else Refusal(result.reason)


def authorize_payment(s: StepContext) -> Refusal | None:
    customer_id, total = UUID(s.data["customer_id"]), Decimal(s.data["total"])
    hold = customers.funds_hold(order_id=_order(s), customer_id=customer_id, amount=total)
    if not hold.held:
        return Refusal(_FUNDS_REFUSALS.get(hold.reason, hold.reason))
    payment = s.call("payments", "payment.authorize", order_id=s.data["order_id"],
                     customer_id=s.data["customer_id"], amount=s.data["total"])
    return None if payment["authorized"] else Refusal(Order.Reason.PAYMENT_DECLINED)


def void_payment(s: StepContext) -> None:
    s.call("payments", "payment.void", order_id=s.data["order_id"])
    customers.funds_release(order_id=_order(s))


def capture_payment_and_commit_stock(s: StepContext) -> None:
    s.call("payments", "payment.capture", order_id=s.data["order_id"])
    customers.funds_consume(order_id=_order(s))
    if s.data["lines"]:
        inventory.stock_commit(order_id=_order(s))


PLACE_ORDER = SagaDefinition(
    name=orders.PLACE_ORDER,
    version=1,
    steps=(
        Step("reserve_stock", reserve_stock, compensation=lambda s: inventory.stock_release(order_id=_order(s)),
             when=lambda s: bool(s.data["lines"]), failure_reason=Order.Reason.OUT_OF_STOCK),
        Step("authorize_payment", authorize_payment, compensation=void_payment,
             failure_reason=Order.Reason.PAYMENT_DECLINED),
        Wait("await_acceptance", event=orders.ACCEPTED, timeout=lambda s: settings.SHOP_ACCEPTANCE_TIMEOUT,
             timeout_reason=Order.Reason.ACCEPTANCE_TIMEOUT,
             when=lambda s: s.data["fulfillment"] == Order.Fulfillment.DELIVERY,
             on_enter=lambda s: orders.order_await_acceptance(order_id=_order(s))),
        # A local status change: errors are the database's, worth retrying until the deadline.
        Step("confirm_order", lambda s: orders.order_confirm(order_id=_order(s)), kind=StepKind.PIVOT,
             retry=RetryPolicy(max_attempts=None, max_backoff=60)),
        Step("capture_payment_and_commit_stock", capture_payment_and_commit_stock, kind=StepKind.RETRIABLE,
             retry=RetryPolicy(max_attempts=None, max_backoff=300)),
    ),
    on_compensated=lambda s, reason: orders.order_close(order_id=_order(s), reason=reason),
    # Whatever happens, an order is settled within a day of its acceptance window.
    deadline=lambda s: settings.SHOP_ACCEPTANCE_TIMEOUT + 24 * 3600,
)
