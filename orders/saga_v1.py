"""The place-order saga, version 1, kept registered so that sagas started under it finish under
it after an upgrade (a saga's progress is an index into its own version's steps). Version 2
(saga.py) gives each participant a step of its own; version 1 held funds and authorized in one
step, and captured, consumed funds and committed stock in another:

1. reserve stock (orders with items)        undo: release stock          refusal: OUT_OF_STOCK
2. hold funds and authorize the payment     undo: void, release funds    refusal: INSUFFICIENT_CREDIT,
                                                                          UNKNOWN_CUSTOMER, PAYMENT_DECLINED
3. (delivery) wait for courier acceptance   at most SHOP_ACCEPTANCE_TIMEOUT, then ACCEPTANCE_TIMEOUT
4. confirm the order                        the pivot: from here on, only forward
5. capture the payment and commit stock     retried until it succeeds

Its steps call the same typed commands as version 2. Remove it once no saga of it is running
(`GET /api/sagas?type=place_order` shows their versions).
"""

from saga.orchestration import Refusal, SagaDefinition, Step, StepKind, Wait

from . import saga as v2
from .models import Order
from .saga import Context


def authorize_payment(s: Context) -> Refusal | None:
    return v2.hold_funds(s) or v2.authorize_payment(s)


def void_payment(s: Context) -> None:
    v2.void_payment(s)
    v2.release_funds(s)


def capture_all(s: Context) -> None:
    v2.capture_payment(s)
    v2.consume_funds(s)
    if v2.has_items(s):
        v2.commit_stock(s)


def shared(name: str) -> Step[v2.PlaceOrderData] | Wait[v2.PlaceOrderData]:
    """A step version 1 shares with the current version: the same name, kind, functions and policies."""
    return v2.PLACE_ORDER.steps[v2.PLACE_ORDER.step_named(name)]


Reason = Order.Reason

PLACE_ORDER_V1 = SagaDefinition(
    name=v2.PLACE_ORDER.name,
    version=1,
    data=v2.PLACE_ORDER.data,
    steps=(
        shared("reserve_stock"),
        Step("authorize_payment", authorize_payment, void_payment, failure_reason=Reason.PAYMENT_DECLINED),
        shared("await_acceptance"),
        shared("confirm_order"),
        Step("capture_payment_and_commit_stock", capture_all, kind=StepKind.RETRIABLE, retry=v2.UNTIL_DONE),
    ),
    on_compensated=v2.close_order,
    operator_reason=Reason.CANCELLED_BY_OPERATOR,
    deadline=v2.acceptance_window_and_a_day,
)
