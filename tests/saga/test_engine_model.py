"""A model-based test of the saga engine: Hypothesis plays customers, couriers, workers, operators
and the payments service against the real place-order saga on the real PostgreSQL database, in
orders it makes up, and checks after every move what the contract promises.

The moves (rules), each printed as a line of a failing example:
- `open_shop`: payments local (called in the worker) or remote (the test is the payments service);
  troubles none (only customers, couriers and workers: their interleavings get more of the
  budget) or all (workers die, steps fail or hang, operators step in);
- `first_order`, `place_order`: a credit-only or item order, pickup or delivery, by one of a few
  customers with small balances, for products with little stock: orders race for funds and goods;
- `advance_saga`: a worker takes one transaction of the saga (it claims the next step, and the
  attempt row is RUNNING; or it runs the step it claimed), or one step, or a Celery doorbell rings
  once or twice (`engine.advance`, as far as the saga goes; nothing while another worker holds
  it); "; meanwhile EVENT": the event arrives during the worker's last transaction, waits for the
  saga's row and goes on once that commits (e.g. the courier accepts while authorize_payment runs);
- `event_arrives`: the courier's `fulfillment.accepted` through the inbox (once, the message
  redelivered, or two messages), `POST /api/orders/{id}/accept` or `/cancel`, at any moment:
  early, on time, late or twice; the answers are checked against the contract's;
- `worker_dies`: after its claim (the next worker finds a RUNNING attempt), or while it runs the
  step, before its transaction commits (what it did at the payment provider stays done); or only
  its database connection drops while it runs the step (a failover: it lives on and runs it again);
- `workers_keep_dying`: every worker that claims the saga's next step dies, as many times in a row
  as the engine allows (a step that kills its worker, at the pivot or anywhere);
- `doorbells_lost`: every doorbell is lost (Redis flushed, an enqueue that failed) while the queue
  holds other work: the sweeper takes the due sagas by their wake-up times and rings them;
- `provider_down`: the capture fails for many attempts in a row (the payment provider down for
  hours, past the saga's deadline), while the clock may run a day ahead;
- `inject_fault` (an error, a refusal or a hang in a step), `operator` (retry, compensate or
  rewind a FAILED or overdue saga), `move_clock` (while some saga has a timer or a backoff);
- payments remote: `payments_serves_command` (once, or delivered again) and `payments_reply`
  (the oldest or the newest arrives, one is lost, or one arrives again).

After every move (`check_promises`): nothing negative; every customer's and product's `reserved`
is the sum of its open holds and reservations, and its balance or stock has dropped by exactly
what was consumed or committed; every order's status agrees with its saga's, with a reason the
contract lists; one `order.created` and at most one terminal event per order, matching its
status; no side effect announced twice, none that belongs to a confirmed order for one that is
not, and no undo announced for something that never happened; nothing captured at the provider
for an order not confirmed; at most one RUNNING attempt per saga; an acceptance window never
moves; an acceptance delivered while the order could still wait is never lost (its wait does not
expire), and an order is confirmed only on such an acceptance; a step that retries for ever
gives up on crashes only after its full allowance since the operator's last retry; a saga at or
past its pivot stops FAILED only for its crashes (never for a deadline or a long retry); an
attempt whose worker only lost its connection is never counted as a crash; every active saga is
due by a wake-up time no later than its timer, its backoff or the stall time (so a saga whose
doorbell is lost is found by the sweeper).
At the end (`teardown`): the faults stop, living workers finish, the payments service answers
everything, the clock runs to the next timer and an operator retries what FAILED, until every
saga is COMPLETED or COMPENSATED; then the contract's invariants hold exactly: nothing reserved,
balance = start - totals of CONFIRMED orders, stock = start - their quantities; at the payment
provider every confirmed order is captured and every other authorization voided; an accepted
cancel ends CANCELLED_BY_CUSTOMER.

Isolation: each example runs in a savepoint of the test's transaction (pytest-django's `db`),
entered in `__init__` and rolled back in `teardown`; the engine's own `atomic()` blocks nest as
savepoints inside it, and its `select_for_update` works as in production. (The per-example reset
of `hypothesis.extra.django.TestCase` hooks `@given` methods, not a state machine.) Nothing
sleeps: the harness's clock is moved by hand, and every service runs with the harness's runtime.

`make test` runs a bounded number of examples; `make fuzz-engine FUZZ_EXAMPLES=5000 FUZZ_SEED=1`
runs it longer. Failing examples are kept under .devstack/hypothesis and replayed first.
"""

import json
import os
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from uuid import UUID, uuid4

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction
from django.db.models import Count, Max, Sum
from django.test import override_settings
from hypothesis import HealthCheck, Phase, note, seed, settings
from hypothesis import strategies as st
from hypothesis.control import current_build_context
from hypothesis.database import DirectoryBasedExampleDatabase
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from customers import services as customers
from customers.models import Customer, FundsHold
from inventory import services as inventory
from inventory.models import Product, StockReservation, StockReservationLine
from orders import services as orders
from orders.models import Order
from orders.saga import PLACE_ORDER
from payments.gateway import Authorization, SandboxGateway
from payments.participant import PAYMENTS
from saga import services as sagas
from saga.messaging import topic_for
from saga.messaging.inbox import consume
from saga.messaging.outbox import envelope
from saga.models import ACTIVE, Direction, OutboxMessage, SagaInstance, SagaStatus, SagaStep
from saga.orchestration import engine
from saga.orchestration.participants import command_handlers, reply_types
from saga.orchestration.runtime import NoFaults
from saga.orchestration.sweeper import take_due
from saga.testing import stepping
from saga.testing.harness import SagaHarness

# --- the shop the machine plays in --------------------------------------------------------------

ACCEPTANCE_TIMEOUT = 300  # seconds (SHOP_ACCEPTANCE_TIMEOUT for the machine)
STARTING_BALANCES = {"ada": Decimal("50.00"), "bob": Decimal("30.00"), "eve (blocked)": Decimal("100.00")}
PRODUCTS = {"widget": (Decimal("10.00"), 3), "gadget": (Decimal("25.00"), 1)}  # price, starting stock
BASKETS = {  # what an order asks for: a credit-only amount, or (product, quantity) lines
    "20.00 of credit": Decimal("20.00"),
    "45.00 of credit": Decimal("45.00"),
    "10.66 of credit (the provider declines)": Decimal("10.66"),
    "1 widget": [("widget", 1)],
    "2 widgets": [("widget", 2)],
    "1 gadget": [("gadget", 1)],
    "1 widget, 1 gadget": [("widget", 1), ("gadget", 1)],
}
FAULTS = {  # what `inject_fault` can put into the next runs of a step: (step, kind, fault)
    "reserve_stock raises": ("reserve_stock", "action", "error"),
    "reserve_stock refuses": ("reserve_stock", "action", "OUT_OF_STOCK"),
    "reserve_stock hangs": ("reserve_stock", "action", "hang"),
    "hold_funds raises": ("hold_funds", "action", "error"),
    "hold_funds refuses": ("hold_funds", "action", "INSUFFICIENT_CREDIT"),
    "hold_funds hangs": ("hold_funds", "action", "hang"),
    "authorize_payment raises": ("authorize_payment", "action", "error"),
    "authorize_payment refuses": ("authorize_payment", "action", "PAYMENT_DECLINED"),
    "authorize_payment hangs": ("authorize_payment", "action", "hang"),
    "confirm_order raises": ("confirm_order", "action", "error"),
    "confirm_order hangs": ("confirm_order", "action", "hang"),
    "capture_payment raises": ("capture_payment", "action", "error"),
    "capture_payment hangs": ("capture_payment", "action", "hang"),
    "consume_funds raises": ("consume_funds", "action", "error"),
    "consume_funds hangs": ("consume_funds", "action", "hang"),
    "commit_stock raises": ("commit_stock", "action", "error"),
    "commit_stock hangs": ("commit_stock", "action", "hang"),
    "the stock release raises": ("reserve_stock", "compensation", "error"),
    "the funds release raises": ("hold_funds", "compensation", "error"),
    "the funds release hangs": ("hold_funds", "compensation", "hang"),
    "the payment void raises": ("authorize_payment", "compensation", "error"),
    "the payment void hangs": ("authorize_payment", "compensation", "hang"),
}
MAX_ORDERS = 3  # per example: enough to race, few enough that each gets far
CLOCK_MOVES = [1, 20, 31, 120, ACCEPTANCE_TIMEOUT - 1, ACCEPTANCE_TIMEOUT + 1, 3600, 25 * 3600]

WAIT = PLACE_ORDER.step_named("await_acceptance")
PIVOT = PLACE_ORDER.pivot_index
STEP_NAMES = [step.name for step in PLACE_ORDER.steps]
UNLIMITED_STEPS = {s.name for s in PLACE_ORDER.steps if getattr(getattr(s, "retry", None), "max_attempts", 0) is None}
FINISHED = (Order.Status.CONFIRMED, Order.Status.REJECTED, Order.Status.CANCELLED)
REASONS = {
    Order.Status.REJECTED: {"OUT_OF_STOCK", "INSUFFICIENT_CREDIT", "PAYMENT_DECLINED", "UNKNOWN_CUSTOMER"},
    Order.Status.CANCELLED: {"ACCEPTANCE_TIMEOUT", "CANCELLED_BY_CUSTOMER", "CANCELLED_BY_OPERATOR"},
}
OPERATOR_COMMENT = "the model's operator"
TERMINAL_EVENTS = {
    "order.confirmed": Order.Status.CONFIRMED,
    "order.rejected": Order.Status.REJECTED,
    "order.cancelled": Order.Status.CANCELLED,
}
ONCE_PER_ORDER = [
    "order.created",
    *TERMINAL_EVENTS,
    "funds.held",
    "funds.released",
    "funds.consumed",
    "stock.reserved",
    "stock.released",
    "stock.committed",
    "payment.authorized",
    "payment.voided",
    "payment.captured",
]
ONLY_WHEN_CONFIRMED = ["funds.consumed", "stock.committed", "payment.captured"]
UNDO_OF = {"funds.released": "funds.held", "stock.released": "stock.reserved", "payment.voided": "payment.authorized"}
MAX_CRASHES = engine.MAX_CRASHES


def weighted(choices: dict[str, int]) -> st.SearchStrategy[str]:
    """One of the choices, each as often as its weight (Hypothesis shrinks towards the first)."""
    names = [name for name, weight in choices.items() for _ in range(weight)]
    return st.integers(0, len(names) - 1).map(names.__getitem__)


# Most orders can go through; some race for the same funds and goods, a few are refused.
CUSTOMER = weighted({"ada": 4, "bob": 3, "eve (blocked)": 1, "unknown customer": 1})
BASKET = weighted({basket: 1 if "declines" in basket else 2 for basket in BASKETS})
FULFILLMENT = weighted({"delivery": 2, "pickup": 1})
# What happens to an order from outside: the courier's `fulfillment.accepted` through the inbox
# (once, the same message again, or two messages), or the customer's POST /accept or /cancel.
EVENTS = {
    "the courier accepts": ("_courier_accepts", "once"),
    "the courier accepts (the message redelivered)": ("_courier_accepts", "redelivered"),
    "the courier accepts twice": ("_courier_accepts", "twice"),
    "POST /accept": ("_customer_accepts_over_http",),
    "POST /cancel": ("_customer_cancels",),
}
EVENT = weighted(
    {
        "the courier accepts": 3,
        "the courier accepts (the message redelivered)": 1,
        "the courier accepts twice": 1,
        "POST /accept": 3,
        "POST /cancel": 2,
    }
)
# How far a worker advances a saga, and what may arrive meanwhile (it waits for the saga's row,
# and goes on after the worker's last transaction commits): "one step; meanwhile POST /accept".
TAKES = {
    "one step": 3,
    "one step in one transaction": 3,
    "one transaction": 2,
    "a doorbell": 2,
    "two doorbells": 1,
    "a redelivered doorbell": 1,
}
MEANWHILE = {"nothing": 3, "the courier accepts": 4, "POST /accept": 2, "POST /cancel": 1}
HOW = weighted(
    {
        (takes if event == "nothing" else f"{takes}; meanwhile {event}"): w * v
        for takes, w in TAKES.items()
        for event, v in MEANWHILE.items()
    }
)


# --- the payment provider: outside our database, so a rolled-back transaction cannot undo it ------


class Provider:
    """What the provider did, by order: authorizations (by idempotency key), voids and captures."""

    def __init__(self) -> None:
        self.authorized: dict[str, Authorization] = {}  # idempotency key -> its answer
        self.voided: set[str] = set()  # authorization keys voided (whatever they had authorized)
        self.captured: set[str] = set()  # references

    def of(self, order_id: UUID) -> tuple[bool, bool, bool]:
        """(authorized and approved, voided, captured) for the order."""
        key = f"{order_id}:authorize"
        answer = self.authorized.get(key)
        approved = bool(answer and answer.approved)
        reference = answer.reference if answer and approved else None
        return approved, approved and key in self.voided, reference in self.captured


PROVIDER = Provider()


class RecordingGateway(SandboxGateway):
    """The sandbox gateway (an amount ending in .66 is declined), recording what it did."""

    def authorize(self, *, order_id: UUID, amount: Decimal, idempotency_key: str) -> Authorization:
        answer = PROVIDER.authorized.get(idempotency_key) or super().authorize(
            order_id=order_id, amount=amount, idempotency_key=idempotency_key
        )
        PROVIDER.authorized[idempotency_key] = answer
        return answer

    def void(self, *, order_id: UUID, authorization_key: str, idempotency_key: str) -> None:
        PROVIDER.voided.add(authorization_key)

    def capture(self, *, reference: str, idempotency_key: str) -> None:
        PROVIDER.captured.add(reference)


# --- what the machine remembers of each order -------------------------------------------------


@dataclass
class PlacedOrder:
    label: str  # its name in the printed example: orders_0, orders_1, ...
    order_id: UUID
    saga_id: UUID
    customer: str
    fulfillment: str
    total: Decimal
    lines: dict[str, int]  # product -> quantity
    accepted_in_time: bool = False  # an acceptance arrived while the order could still wait for it
    accepted_after_step: int = 0  # the saga's last step row when it did
    acceptance_uncertain: bool = False  # an acceptance arrived where the contract leaves it open
    late_acceptances: int = 0  # acceptances that arrived when the order could no longer wait
    cancel_accepted: bool = False  # POST /cancel answered 202
    rolled_back_by_operator: bool = False  # an operator's compensate started its roll-back
    retried_after_step: int = 0  # the saga's last step row when an operator last retried it
    wait_timer: datetime | None = None  # when its acceptance window closes, once it is waiting

    def __repr__(self) -> str:
        return self.label


class WorkerDied(Exception):
    """The worker's process ended before its transaction committed."""


class PlaceOrderModel(RuleBasedStateMachine):
    orders = Bundle("orders")

    def __init__(self) -> None:
        super().__init__()
        self.harness = SagaHarness(PLACE_ORDER)
        self.clock = self.harness.clock
        self.runtime = self.harness.runtime
        self.placed: list[PlacedOrder] = []
        self._notes: list[str] = []
        self._final = current_build_context().is_final  # the failing example, shown: say what happens
        self.claims: dict[UUID, stepping.Claim] = {}  # living workers between their claim and run
        self.blipped: set[int] = set()  # attempt rows whose worker lost only its connection
        self.remote = False
        self.troubles = False
        self._timers_pending = False
        self.served: set[UUID] = set()  # payment commands (outbox message ids) the payments service read
        self.delivered: set[UUID] = set()  # replies (outbox message ids) that reached the saga
        self.lost: set[UUID] = set()  # replies that never will
        PROVIDER.__init__()
        # This example's outbox rows come after this position (earlier examples' are rolled back, but
        # dead rows are still scanned: every outbox query starts from here, on the primary key).
        self.outbox_from = OutboxMessage.objects.aggregate(last=Max("position"))["last"] or 0
        # Each example in a savepoint of the test's transaction, rolled back in teardown.
        self._example = transaction.atomic()
        self._example.__enter__()
        self._settings = None
        self._configure()
        # The checks read the database again only after a move that wrote to it.
        self._dirty = True
        self._watch_writes = connection.execute_wrapper(self._note_write)
        self._watch_writes.__enter__()
        # Every service the machine calls (orders, saga) runs with the harness's clock and faults.
        self._default_runtime = sagas.default_runtime
        sagas.default_runtime = lambda: self.runtime
        self.customer_ids = {
            name: customers.customer_create(name=name, balance=balance, blocked="blocked" in name).pk
            for name, balance in STARTING_BALANCES.items()
        }
        self.customer_ids["unknown customer"] = uuid4()
        self.products = {
            name: inventory.product_create(sku=name.upper(), name=name, price=price, stock=stock).pk
            for name, (price, stock) in PRODUCTS.items()
        }
        self.inbound = sagas.inbound()

    # --- set-up -----------------------------------------------------------------------------

    @initialize(payments=st.sampled_from(["local", "remote"]), troubles=st.sampled_from(["none", "all"]))
    def open_shop(self, payments: str, troubles: str) -> None:
        """Payments is called in the worker, or is a remote participant the test plays. Troubles:
        none (customers, couriers and workers only, so more of their interleavings are tried), or
        all (workers die, steps fail or hang, operators step in)."""
        self.remote = payments == "remote"
        self.troubles = troubles == "all"
        self._configure()
        self.inbound = sagas.inbound()

    @initialize(target=orders, customer=CUSTOMER, basket=BASKET, fulfillment=FULFILLMENT)
    def first_order(self, customer: str, basket: str, fulfillment: str) -> PlacedOrder:
        return self.place_order(customer, basket, fulfillment)

    # --- customers ------------------------------------------------------------------------

    @precondition(lambda self: len(self.placed) < MAX_ORDERS)
    @rule(target=orders, customer=CUSTOMER, basket=BASKET, fulfillment=FULFILLMENT)
    def place_order(self, customer: str, basket: str, fulfillment: str) -> PlacedOrder:
        wanted = BASKETS[basket]
        lines = dict(wanted) if isinstance(wanted, list) else {}
        items = [orders.ItemRequest(quantity=q, product_id=self.products[p]) for p, q in lines.items()]
        order = orders.order_place(
            customer_id=self.customer_ids[customer],
            items=items,
            amount=None if lines else wanted,
            fulfillment=fulfillment,
        ).order
        placed = PlacedOrder(
            label=f"orders_{len(self.placed)}",
            order_id=order.pk,
            saga_id=order.saga_id,
            customer=customer,
            fulfillment=fulfillment,
            total=order.total,
            lines=lines,
        )
        self.placed.append(placed)
        self._show(placed)
        return placed

    @rule(order=orders, event=EVENT)
    def event_arrives(self, order: PlacedOrder, event: str) -> None:
        """The courier's acceptance (`fulfillment.accepted` through the inbox), or the customer's
        `POST /api/orders/{id}/accept` or `/cancel`: checked against what the contract answers."""
        self._event(order, event)

    # --- workers --------------------------------------------------------------------------

    @rule(order=orders, how=HOW)
    def advance_saga(self, order: PlacedOrder, how: str) -> None:
        """A worker advances the order's saga: by one transaction (it claims the next step, or runs
        the step it claimed), by one step (transactions until it has run a step, passing over steps
        that do not apply, or until the saga waits or stops), by one step in one transaction (as
        a doorbell does when no crash is suspected), or as a Celery doorbell does (`engine.advance`:
        as far as it goes now; rung twice, as at-least-once delivery may; or redelivered after a
        worker died, when the saga is moved with care).
        "; meanwhile EVENT": the event arrives during the worker's last transaction, waits for the
        saga's row, and goes on once that transaction commits."""
        takes, _, meanwhile = how.partition("; meanwhile ")
        if takes == "one transaction":
            self._worker_transaction(order)
        elif takes == "one step in one transaction":
            if stepping.step(order.saga_id, self.runtime) is None:
                self._say(f"{order}: the saga needs care; the worker claims instead")
                self._worker_transaction(order)
            self._show(order)
        elif takes == "one step":
            for _ in range(6):  # skips, then a claim and its run; or a wait entered or passed
                before = self._position(order)
                ran = order.saga_id in self.claims
                moved = self._worker_transaction(order)
                index, direction, status = self._position(order)
                passed_wait = direction == Direction.FORWARD and before[0] == WAIT and index != WAIT
                if ran or passed_wait or not moved or status not in ACTIVE or status == SagaStatus.WAITING:
                    break
        elif order.saga_id in self.claims:
            self._say(f"{order}: the doorbell finds the saga held by the worker that claimed it (its advisory lock)")
        else:
            for _ in range(2 if takes == "two doorbells" else 1):
                engine.advance(order.saga_id, self.runtime, suspect=takes == "a redelivered doorbell")
            self._show(order)
        if meanwhile:
            self._say(f"{order}: meanwhile, {meanwhile}")
            self._event(order, meanwhile)

    @precondition(lambda self: self.troubles)
    @rule(
        order=orders,
        moment=st.sampled_from(
            [
                "after its claim",
                "before its run commits",
                "in its one-transaction step",
                "its connection drops",
                "its connection drops in its claim",
            ]
        ),
    )
    def worker_dies(self, order: PlacedOrder, moment: str) -> None:
        """The worker holding (or now claiming) the saga's next step dies: right after its claim, in
        the middle of the run, or in the middle of a step taken in one transaction (a transaction
        rolls back; calls it made outside stay made); or only its database connection drops, in its
        run or in its claim (it lives on: a claim that never committed leaves nothing to count)."""
        if moment == "in its one-transaction step":
            self._worker_dies_in_one_transaction(order)
            return
        if moment == "its connection drops in its claim":
            if order.saga_id in self.claims:
                self._say(f"{order}: a living worker holds the saga; no other claims it")
                return
            try:
                with transaction.atomic():
                    self._claim(order)
                    raise WorkerDied
            except WorkerDied:
                self._say(f"{order}: the database connection dropped while a worker claimed its next step")
            self._show(order)
            return
        claimed = self.claims.pop(order.saga_id, None) or self._claim(order)
        if not isinstance(claimed, stepping.Claim):
            self._say(f"{order}: no step to claim; nothing died")
        elif moment == "after its claim":
            self._say(f"{order}: the worker that claimed {self._claimed_step(claimed)} died")
        elif moment == "its connection drops":
            self._connection_drops(order, claimed)
        else:
            try:
                with transaction.atomic():
                    stepping.run(order.saga_id, claimed, self.runtime)
                    raise WorkerDied
            except WorkerDied:
                self._say(f"{order}: the worker died running {self._claimed_step(claimed)}, before its commit")
        self._show(order)

    def _connection_drops(self, order: PlacedOrder, claimed: stepping.Claim) -> None:
        try:
            with transaction.atomic():
                stepping.run(order.saga_id, claimed, self.runtime)
                raise WorkerDied
        except WorkerDied:
            stepping.lose_connection(claimed)
            self.blipped.add(claimed.row_id)
            self._say(f"{order}: the database connection dropped while {self._claimed_step(claimed)} ran")

    @precondition(lambda self: self.troubles)
    @rule(order=orders, where=st.sampled_from(["its next step", "confirm_order (the pivot)"]))
    def workers_keep_dying(self, order: PlacedOrder, where: str) -> None:
        """Every worker that claims a step of the saga dies, more times in a row than the engine
        allows (the clock runs through the backoffs between them): at its next step, or at its
        pivot, where the saga is first taken one step at a time (if it gets there)."""
        self.claims.pop(order.saga_id, None)
        if where != "its next step" and not self._steps_to(order, PIVOT):
            self._say(f"{order}: the saga does not reach confirm_order; no worker dies")
            return
        for _ in range(MAX_CRASHES + 1):
            claimed = self._claim(order)
            saga = SagaInstance.objects.get(pk=order.saga_id)
            if not isinstance(claimed, stepping.Claim) and saga.retry_at is not None and saga.status in ACTIVE:
                self.clock.advance(max((saga.retry_at - self.clock.now()).total_seconds(), 0))
                claimed = self._claim(order)
            if not isinstance(claimed, stepping.Claim):
                break
            self._say(f"{order}: the worker that claimed {self._claimed_step(claimed)} died")
        self._show(order)

    def _steps_to(self, order: PlacedOrder, index: int) -> bool:
        """Take the saga forward one transaction at a time until its next step is `index`: True
        if it stands there, moving forward."""
        for _ in range(8):
            at, direction, status = self._position(order)
            if (at, direction) == (index, Direction.FORWARD) and status in ACTIVE:
                return True
            if at > index or direction != Direction.FORWARD or status not in ACTIVE or status == SagaStatus.WAITING:
                return False
            if stepping.step(order.saga_id, self.runtime) is None:
                claimed = self._claim(order)  # the saga needs care: claim and run
                if isinstance(claimed, stepping.Claim):
                    stepping.run(order.saga_id, claimed, self.runtime)
        return False

    @rule()
    def doorbells_lost(self) -> None:
        """Every doorbell was lost while the queue holds other work: the sweeper takes the sagas
        due by their wake-up times (as it does, in its own transaction) and rings each of them,
        but those a living worker holds (its advisory lock)."""
        now = self.clock.now()
        timed, stalled = take_due(now, 500, now + timedelta(seconds=5))
        ours = {placed.saga_id: placed for placed in self.placed}
        for saga_id in timed + stalled:
            if saga_id in ours and saga_id not in self.claims:
                self._say(f"{ours[saga_id]}: the sweeper rings it")
                engine.advance(saga_id, self.runtime)
                self._show(ours[saga_id])

    @precondition(lambda self: self.troubles)
    @rule(times=st.integers(10, 40))
    def provider_down(self, times: int) -> None:
        """The capture fails `times` times in a row: the provider is down for hours."""
        self.harness.raise_in("capture_payment", times=times)

    def _worker_dies_in_one_transaction(self, order: PlacedOrder) -> None:
        try:
            with transaction.atomic():
                if stepping.step(order.saga_id, self.runtime) is None:
                    self._say(f"{order}: the saga needs care; no step is taken in one transaction")
                    return
                raise WorkerDied
        except WorkerDied:
            self._say(f"{order}: the worker died in a one-transaction step, before its commit")
        self._show(order)

    @precondition(lambda self: self._timers_pending)
    @rule(seconds=st.sampled_from(CLOCK_MOVES))
    def move_clock(self, seconds: int) -> None:
        """Time passes (only offered while a saga has a timer or a backoff to run out)."""
        self.clock.advance(seconds)

    @precondition(lambda self: self.troubles)
    @rule(fault=st.sampled_from(list(FAULTS)), times=st.integers(1, 2))
    def inject_fault(self, fault: str, times: int) -> None:
        """The next `times` runs of a step raise, refuse or hang (past its timeout)."""
        step, kind, what = FAULTS[fault]
        if what == "error":
            self.harness.raise_in(step, kind=kind, times=times)
        elif what == "hang":
            self.harness.hang_in(step, kind=kind, times=times)
        else:
            self.harness.refuse_in(step, what, times=times)

    # --- operators ------------------------------------------------------------------------

    @precondition(lambda self: self.troubles)
    @rule(order=orders, action=st.sampled_from(["retry", "compensate", *(f"rewind to {name}" for name in STEP_NAMES)]))
    def operator(self, order: PlacedOrder, action: str) -> None:
        """`POST /api/sagas/{id}/retry`, `.../compensate`, or `replay_saga --from-step NAME`, on a
        saga an operator would look at: FAILED, or stuck (overdue by the sweeper's measure)."""
        saga = SagaInstance.objects.get(pk=order.saga_id)
        stuck = saga.status in ACTIVE and saga.wake_at is not None and saga.wake_at <= self.clock.now()
        if saga.status != SagaStatus.FAILED and not stuck:
            self._say(f"{order}: nothing for an operator to do ({saga.status}, not overdue)")
            return
        if action == "retry":
            call = lambda: sagas.saga_retry(saga_id=order.saga_id, comment=OPERATOR_COMMENT)  # noqa: E731
        elif action == "compensate":
            call = lambda: sagas.saga_compensate(saga_id=order.saga_id, comment=OPERATOR_COMMENT)  # noqa: E731
        else:
            call = lambda: engine.rewind(order.saga_id, action.removeprefix("rewind to "), self.runtime)  # noqa: E731
        self._operator(order, action, call)

    # --- the payments service, when remote ------------------------------------------------

    @precondition(lambda self: self.remote)
    @rule(order=orders, copies=st.sampled_from(["once", "redelivered"]))
    def payments_serves_command(self, order: PlacedOrder, copies: str) -> None:
        """The payments service reads the order's oldest unread command (once, or delivered again:
        its inbox skips the copy) and replies through its outbox."""
        command = self._commands(order).first()
        if command is None:
            self._say(f"{order}: no payment command to serve")
            return
        self.served.add(command.id)
        for _ in range(1 + (copies == "redelivered")):
            outcome = consume(command.topic, self._value(command), using=command_handlers(PAYMENTS))
            self._say(f"{order}: the payments service read {command.type} ({outcome})")
        self._show(order)

    @precondition(lambda self: self.remote)
    @rule(
        order=orders,
        reply=st.sampled_from(["oldest arrives", "newest arrives", "oldest is lost", "last one arrives again"]),
    )
    def payments_reply(self, order: PlacedOrder, reply: str) -> None:
        """A reply of the payments service reaches the saga: the oldest one on its way, or the
        newest (the older ones then arrive late); or the oldest is lost; or Kafka delivers the
        last one the saga had again (the consumer's inbox skips it)."""
        pending = list(self._replies(order))
        if reply == "last one arrives again":
            message = self._outbox().filter(id__in=self.delivered, correlation_id=order.saga_id).last()
        else:
            message = (pending[-1] if reply == "newest arrives" else pending[0]) if pending else None
        if message is None:
            self._say(f"{order}: no payment reply for '{reply}'")
            return
        if reply == "oldest is lost":
            self.lost.add(message.id)
            self._say(f"{order}: the reply {message.type} is lost")
            return
        self.delivered.add(message.id)
        outcome = consume(message.topic, self._value(message), using=self.inbound[2], lenient=True)
        self._say(f"{order}: the reply {message.type} arrived ({outcome})")
        self._show(order)

    # --- after every move -----------------------------------------------------------------

    @invariant()
    def check_promises(self) -> None:
        self._flush_notes()
        if not self._dirty:
            return
        self._dirty = False
        world = Snapshot.take(self)
        self._timers_pending = any(
            saga.status in ACTIVE and (saga.timer_at or saga.retry_at) for saga in world.sagas.values()
        )
        self._check_money_and_goods(world)
        self._check_orders_agree_with_sagas(world)
        self._check_events(world)

    def teardown(self) -> None:
        try:
            if sys.exc_info()[0] is None and self.placed:  # a failing move is reported as it is
                self._settle()
                self._check_settled()
        finally:
            sagas.default_runtime = self._default_runtime
            self._watch_writes.__exit__(None, None, None)
            self._settings.disable()
            transaction.set_rollback(True)
            self._example.__exit__(None, None, None)

    # --- the checks -----------------------------------------------------------------------

    def _check_money_and_goods(self, world: "Snapshot") -> None:
        for name, customer_id in self.customer_ids.items():
            customer = world.customers.get(customer_id)
            if customer is None:
                continue
            balance, reserved = customer
            held = world.holds.get((customer_id, FundsHold.Status.HELD), 0)
            consumed = world.holds.get((customer_id, FundsHold.Status.CONSUMED), 0)
            assert balance >= 0 and 0 <= reserved <= balance, f"{name}: balance {balance}, reserved {reserved}"
            assert reserved == held, f"{name}: reserved {reserved}, but its open holds sum to {held}"
            assert balance == STARTING_BALANCES[name] - consumed, (
                f"{name}: balance {balance}, but it started with {STARTING_BALANCES[name]} and {consumed} was consumed"
            )
        for name, product_id in self.products.items():
            stock, reserved = world.products[product_id]
            held = world.reservations.get((product_id, StockReservation.Status.RESERVED), 0)
            committed = world.reservations.get((product_id, StockReservation.Status.COMMITTED), 0)
            assert stock >= 0 and 0 <= reserved <= stock, f"{name}: stock {stock}, reserved {reserved}"
            assert reserved == held, f"{name}: reserved {reserved}, but its open reservations sum to {held}"
            assert stock == PRODUCTS[name][1] - committed, (
                f"{name}: stock {stock}, but it started with {PRODUCTS[name][1]} and {committed} were committed"
            )

    def _check_orders_agree_with_sagas(self, world: "Snapshot") -> None:
        now = self.clock.now()
        for placed in self.placed:
            order, saga = world.orders[placed.order_id], world.sagas[placed.saga_id]
            where = f"{placed}: order {order.status}/{order.reason}, saga {_saga_words(saga)}"
            past_pivot = saga.direction == Direction.FORWARD and saga.step_index > PIVOT
            assert (order.status == Order.Status.CONFIRMED) == past_pivot, f"{where}: confirmed iff past the pivot"
            rolled_back = order.status in (Order.Status.REJECTED, Order.Status.CANCELLED)
            compensated = saga.status == SagaStatus.COMPENSATED
            assert rolled_back == compensated, f"{where}: rejected or cancelled iff compensated"
            assert saga.status != SagaStatus.COMPLETED or order.status == Order.Status.CONFIRMED, where
            if order.status == Order.Status.AWAITING_ACCEPTANCE:
                assert placed.fulfillment == "delivery", where
            expected_reasons = REASONS.get(order.status)
            assert (order.reason in expected_reasons) if expected_reasons else order.reason is None, (
                f"{where}: {order.status} with reason {order.reason!r}"
            )
            if order.reason == "UNKNOWN_CUSTOMER":
                assert placed.customer == "unknown customer", where
            at_or_past_pivot = saga.direction == Direction.FORWARD and saga.step_index >= PIVOT
            if saga.status == SagaStatus.FAILED and at_or_past_pivot:
                assert "its worker died" in saga.error, f"{where}: stopped at or past the pivot, but not for crashes"
            crashed = {row for rows in world.crashes.values() for row in rows}
            assert not crashed & self.blipped, f"{where}: an attempt that only lost its connection counted as a crash"
            if saga.status in ACTIVE:  # found by the sweeper, however its doorbell fares
                stalled_by = now + timedelta(seconds=self.runtime.stall_after)
                latest = max(stalled_by, saga.timer_at or now, saga.retry_at or now)
                assert saga.wake_at is not None and saga.wake_at <= latest, (
                    f"{where}: due by {saga.wake_at}, later than its timer, backoff or stall time"
                )
            running = world.running.get(saga.pk, 0)
            assert running <= 1, f"{where}: {running} attempts RUNNING at once"
            # A wait lasts what it promised: its window never moves (an operator's rewind restarts it).
            if saga.status == SagaStatus.WAITING and saga.step_index == WAIT:
                if placed.wait_timer is None:
                    placed.wait_timer = saga.timer_at
                assert saga.timer_at == placed.wait_timer, (
                    f"{where}: its acceptance window moved from "
                    f"{placed.wait_timer:%H:%M:%S} to {saga.timer_at:%H:%M:%S}"
                )
            # An acceptance delivered in time is never lost ...
            if placed.accepted_in_time:
                expired = [row for row in world.expired_waits.get(saga.pk, []) if row > placed.accepted_after_step]
                assert not expired, f"{where}: the courier accepted it while it could still wait, yet its wait expired"
            # ... and an order is confirmed only on an acceptance in time.
            delivered = order.status == Order.Status.CONFIRMED and placed.fulfillment == "delivery"
            if delivered and not placed.acceptance_uncertain:
                assert placed.accepted_in_time, (
                    f"{where}: confirmed, but its only acceptances "
                    f"({placed.late_acceptances}) came when it could no longer wait"
                )
            # An operator's retry is a fresh start: a step that retries for ever gives up on its
            # crashes only after its full allowance since the retry.
            for step in UNLIMITED_STEPS:
                if saga.status == SagaStatus.FAILED and f"{step}: its worker died" in saga.error:
                    crashes = [row for row in world.crashes.get((saga.pk, step), []) if row > placed.retried_after_step]
                    assert len(crashes) >= MAX_CRASHES, (
                        f"{where}: gave up on {step} after {len(crashes)} crashes since the operator's retry"
                    )

    def _check_events(self, world: "Snapshot") -> None:
        for placed in self.placed:
            order = world.orders[placed.order_id]
            seen = {type: world.events.get((str(placed.order_id), type), 0) for type in ONCE_PER_ORDER}
            where = f"{placed} ({order.status}): events { {t: n for t, n in seen.items() if n} }"
            assert seen["order.created"] == 1, where
            for type in ONCE_PER_ORDER:
                assert seen[type] <= 1, f"{where}: {type} announced {seen[type]} times"
            terminal = [type for type in TERMINAL_EVENTS if seen[type]]
            assert terminal == [t for t, s in TERMINAL_EVENTS.items() if s == order.status], f"{where}: terminal events"
            if order.status != Order.Status.CONFIRMED:
                for type in ONLY_WHEN_CONFIRMED:
                    assert not seen[type], f"{where}: {type} for an order that is not confirmed"
            for undo, done in UNDO_OF.items():
                assert seen[undo] <= seen[done], f"{where}: {undo} announced, but {done} never happened"
            _, voided, captured = PROVIDER.of(placed.order_id)
            assert not captured or order.status == Order.Status.CONFIRMED, f"{where}: captured at the provider"
            assert not (voided and captured), f"{where}: both voided and captured at the provider"

    def _check_settled(self) -> None:
        """The contract's invariants at rest, exactly."""
        self._dirty = True
        self.check_promises()
        confirmed_totals: defaultdict[str, Decimal] = defaultdict(Decimal)
        confirmed_units: Counter = Counter()
        for placed in self.placed:
            order, saga = self._rows(placed)
            where = f"{placed}: order {order.status}/{order.reason}, saga {_saga_words(saga)}"
            assert saga.status in (SagaStatus.COMPLETED, SagaStatus.COMPENSATED), f"{where}: not settled"
            approved, voided, captured = PROVIDER.of(placed.order_id)
            if order.status == Order.Status.CONFIRMED:
                confirmed_totals[placed.customer] += order.total
                confirmed_units.update(placed.lines)
                assert approved and captured and not voided, (
                    f"{where}: at the provider {approved=} {captured=} {voided=}"
                )
            else:
                assert voided or not approved, f"{where}: authorized at the payment provider and never voided"
            if placed.cancel_accepted:
                assert (order.status, order.reason) == ("CANCELLED", "CANCELLED_BY_CUSTOMER"), (
                    f"{where}: its cancel was accepted"
                )
            if placed.rolled_back_by_operator:
                assert (order.status, order.reason) == ("CANCELLED", "CANCELLED_BY_OPERATOR"), (
                    f"{where}: an operator's compensate rolled it back"
                )
        for name, customer_id in self.customer_ids.items():
            customer = Customer.objects.filter(pk=customer_id).first()
            if customer is not None:
                assert (customer.balance, customer.reserved) == (STARTING_BALANCES[name] - confirmed_totals[name], 0), (
                    f"{name}: balance {customer.balance}, reserved {customer.reserved}; "
                    f"confirmed {confirmed_totals[name]}"
                )
        for name, product_id in self.products.items():
            product = Product.objects.get(pk=product_id)
            assert (product.stock, product.reserved) == (PRODUCTS[name][1] - confirmed_units[name], 0), (
                f"{name}: stock {product.stock}, reserved {product.reserved}; confirmed {confirmed_units[name]}"
            )

    # --- the end: everything settles --------------------------------------------------------

    def _settle(self, rounds: int = 400, operator_retries: int = 3) -> None:
        """Faults stop, living workers finish, the payments service answers everything, the clock
        moves to the next timer, and an operator retries a FAILED saga (a few times)."""
        note("--- the end: faults stop, every saga is driven until it finishes ---")
        self.runtime.faults = NoFaults()
        for saga_id, claimed in list(self.claims.items()):
            stepping.run(saga_id, claimed, self.runtime)
        self.claims.clear()
        retried: Counter = Counter()
        for _ in range(rounds):
            if self.remote:
                self._answer_every_payment_command()
            sagas_ = {s.pk: s for s in SagaInstance.objects.filter(pk__in=[p.saga_id for p in self.placed])}
            for saga in sagas_.values():
                if saga.status in ACTIVE:
                    engine.advance(saga.pk, self.runtime)
                elif saga.status == SagaStatus.FAILED:
                    placed = next(p for p in self.placed if p.saga_id == saga.pk)
                    assert retried[saga.pk] < operator_retries, (
                        f"{placed}: still FAILED after {operator_retries} operator retries, faults off: {saga.error}"
                    )
                    retried[saga.pk] += 1
                    note(f"{placed}: FAILED ({saga.error}); an operator retries it")
                    self._operator(
                        placed,
                        "retry",
                        lambda saga_id=saga.pk: sagas.saga_retry(saga_id=saga_id, comment=OPERATOR_COMMENT),
                    )
                    self._flush_notes()
            active = list(SagaInstance.objects.filter(pk__in=sagas_, status__in=[*ACTIVE, SagaStatus.FAILED]))
            if not active:
                return
            due = [t for s in active for t in (s.retry_at, s.timer_at) if t is not None and t > self.clock.now()]
            self.clock.advance((min(due) - self.clock.now()).total_seconds() if due else 1)
        stuck = ", ".join(f"{p}: {_saga_words(self._rows(p)[1])}" for p in self.placed)
        raise AssertionError(f"the sagas did not settle in {rounds} rounds: {stuck}")

    def _answer_every_payment_command(self) -> None:
        while True:
            command = self._outbox().filter(topic=topic_for("payment_commands")).exclude(id__in=self.served).first()
            reply = (
                self._outbox().filter(type__in=reply_types(PAYMENTS)).exclude(id__in=self.delivered | self.lost).first()
            )
            if command is None and reply is None:
                return
            if command is not None:
                self.served.add(command.id)
                consume(command.topic, self._value(command), using=command_handlers(PAYMENTS))
            if reply is not None:
                self.delivered.add(reply.id)
                consume(reply.topic, self._value(reply), using=self.inbound[2], lenient=True)

    # --- what customers and couriers do --------------------------------------------------------

    def _event(self, order: PlacedOrder, event: str) -> None:
        method, *args = EVENTS[event]
        getattr(self, method)(order, *args)

    def _courier_accepts(self, order: PlacedOrder, copies: str = "once") -> None:
        first = self._courier_message(order)
        messages = {"once": [first], "redelivered": [first, first], "twice": [first, self._courier_message(order)]}
        for value in messages[copies]:
            expected, _ = self._acceptance_expected(order)
            outcome = consume(topic_for("fulfillment_events"), value, using=self.inbound[2])
            self._record_acceptance(order, expected, delivered=outcome == "processed")
            self._say(f"{order}: the courier's acceptance was {outcome} (the order {self._may_wait_words(expected)})")
        self._show(order)

    def _customer_accepts_over_http(self, order: PlacedOrder) -> None:
        expected, state = self._acceptance_expected(order)
        try:
            orders.order_accept(order_id=order.order_id)
            answer = 202
        except orders.OrderStateConflict:
            answer = 409
        self._say(f"{order}: POST /accept answered {answer} (the order {self._may_wait_words(expected)})")
        self._record_acceptance(order, expected, delivered=answer == 202)
        self._show(order)
        self._flush_notes()
        if expected is True:
            assert answer == 202, f"POST /accept of {order} answered 409 while it could still wait ({state})"
        if expected is False:
            assert answer == 409, f"POST /accept of {order} answered 202 while it could no longer wait ({state})"

    def _customer_cancels(self, order: PlacedOrder) -> None:
        expected, state = self._cancel_expected(order)
        try:
            orders.order_cancel(order_id=order.order_id)
            answer = 202
        except orders.OrderStateConflict:
            answer = 409
        order.cancel_accepted |= answer == 202
        self._say(f"{order}: POST /cancel answered {answer}")
        self._show(order)
        self._flush_notes()
        if expected is not None:
            assert answer == (202 if expected else 409), f"POST /cancel of {order} answered {answer} ({state})"

    # --- helpers --------------------------------------------------------------------------

    def _note_write(self, execute, sql, params, many, context):
        if sql.lstrip()[:6].upper() in ("INSERT", "UPDATE", "DELETE"):
            self._dirty = True
        return execute(sql, params, many, context)

    def _configure(self) -> None:
        if self._settings is not None:
            self._settings.disable()
        self._settings = override_settings(
            SHOP_ACCEPTANCE_TIMEOUT=ACCEPTANCE_TIMEOUT,
            SAGA_REMOTE_PARTICIPANTS=["payments"] if self.remote else [],
            PAYMENTS_GATEWAY=f"{RecordingGateway.__module__}.{RecordingGateway.__qualname__}",
        )
        self._settings.enable()

    def _rows(self, placed: PlacedOrder) -> tuple[Order, SagaInstance]:
        return Order.objects.get(pk=placed.order_id), SagaInstance.objects.get(pk=placed.saga_id)

    def _state(self, placed: PlacedOrder, rows: tuple[Order, SagaInstance] | None = None) -> str:
        order, saga = rows or self._rows(placed)
        reason = f"/{order.reason}" if order.reason else ""
        return f"order {order.status}{reason}, saga {_saga_words(saga, self.clock.now())}"

    def _show(self, placed: PlacedOrder) -> None:
        if not self._final:
            return  # the queries are for people: only when the failing example is shown
        claimed = " (a worker holds its claim)" if placed.saga_id in self.claims else ""
        self._say(f"    {placed}: {self._state(placed)}{claimed}")

    def _say(self, text: str) -> None:
        """Printed under the move that said it, in a failing example."""
        if self._final:
            self._notes.append(text)

    def _flush_notes(self) -> None:
        for text in self._notes:
            note(text)
        self._notes.clear()

    def _acceptance_expected(self, placed: PlacedOrder) -> tuple[bool | None, str]:
        """Can the order still wait for its courier (an acceptance ends its wait, or is kept for it)?
        True or False as the contract says, None where it leaves the answer open; and its state."""
        order, saga = rows = self._rows(placed)
        return _may_still_wait(order, saga, self.clock.now()), self._state(placed, rows)

    def _record_acceptance(self, placed: PlacedOrder, expected: bool | None, *, delivered: bool) -> None:
        if not delivered:
            return
        if expected is True and not placed.accepted_in_time:
            placed.accepted_in_time = True
            placed.accepted_after_step = self._last_step(placed)
        elif expected is False:
            placed.late_acceptances += 1
        elif expected is None:
            placed.acceptance_uncertain = True

    @staticmethod
    def _may_wait_words(expected: bool | None) -> str:
        return {True: "could still wait for it", False: "could no longer wait", None: "was past its wait or stopped"}[
            expected
        ]

    def _cancel_expected(self, placed: PlacedOrder) -> tuple[bool | None, str]:
        """202 (True) for an order its saga can still roll back, 409 (False) for a finished one."""
        order, saga = rows = self._rows(placed)
        if order.status in FINISHED:
            expected = False
        elif saga.status in ACTIVE and saga.direction == Direction.FORWARD and saga.step_index <= PIVOT:
            expected = True
        else:
            expected = None
        return expected, self._state(placed, rows)

    @staticmethod
    def _last_step(placed: PlacedOrder) -> int:
        return SagaStep.objects.filter(saga_id=placed.saga_id).order_by("-id").values_list("id", flat=True).first() or 0

    def _operator(self, placed: PlacedOrder, action: str, call) -> None:
        last_step = self._last_step(placed)
        forward = SagaInstance.objects.get(pk=placed.saga_id).direction == Direction.FORWARD
        try:
            call()
        except engine.SagaStateConflict as conflict:
            self._say(f"{placed}: the operator's {action} answered 409 ({conflict})")
            return
        self._say(f"{placed}: the operator's {action} was accepted")
        if action == "retry":
            placed.retried_after_step = last_step
        elif action == "compensate":  # a saga already rolling back keeps its reason
            placed.rolled_back_by_operator |= forward
        elif action.startswith("rewind"):  # the wait runs again, in a new window; earlier acceptances may count
            placed.wait_timer = None
            placed.accepted_in_time = False
            placed.acceptance_uncertain = True
        self._show(placed)

    def _worker_transaction(self, order: PlacedOrder) -> bool:
        """One transaction of a worker; False if the saga had nothing to do."""
        claimed = self.claims.pop(order.saga_id, None)
        if claimed is not None:
            self._say(f"{order}: the worker runs {self._claimed_step(claimed)}")
            stepping.run(order.saga_id, claimed, self.runtime)
            moved = True
        else:
            claimed = self._claim(order)
            if isinstance(claimed, stepping.Claim):
                self.claims[order.saga_id] = claimed
                self._say(f"{order}: a worker claimed {self._claimed_step(claimed)}")
            moved = claimed is not False
        self._show(order)
        return moved

    def _claim(self, order: PlacedOrder) -> stepping.Claim | bool:
        """A worker claims the saga's next step. An attempt whose worker only lost its connection
        is taken over: from then on it is this worker's, to finish or to die in."""
        claimed = stepping.claim(order.saga_id, self.runtime)
        if isinstance(claimed, stepping.Claim):
            self.blipped.discard(claimed.row_id)
        return claimed

    def _position(self, order: PlacedOrder) -> tuple:
        return SagaInstance.objects.filter(pk=order.saga_id).values_list("step_index", "direction", "status").get()

    def _claimed_step(self, claimed: stepping.Claim) -> str:
        row = SagaStep.objects.get(pk=claimed.row_id)
        return f"{row.name} ({row.kind}, attempt {row.attempt})"

    def _courier_message(self, placed: PlacedOrder) -> bytes:
        return json.dumps(
            {
                "id": str(uuid4()),
                "type": orders.ACCEPTED,
                "correlation_id": None,
                "payload": {"order_id": str(placed.order_id)},
            }
        ).encode()

    def _outbox(self):
        return OutboxMessage.objects.filter(position__gt=self.outbox_from).order_by("position")

    def _commands(self, placed: PlacedOrder):
        return (
            self._outbox()
            .filter(topic=topic_for("payment_commands"), correlation_id=placed.saga_id)
            .exclude(id__in=self.served)
            .order_by("position")
        )

    def _replies(self, placed: PlacedOrder):
        return (
            self._outbox()
            .filter(type__in=reply_types(PAYMENTS), correlation_id=placed.saga_id)
            .exclude(id__in=self.delivered | self.lost)
            .order_by("position")
        )

    @staticmethod
    def _value(message: OutboxMessage) -> bytes:
        return json.dumps(envelope(message)).encode()


@dataclass
class Snapshot:
    """What the checks read, in a handful of queries."""

    customers: dict[UUID, tuple[Decimal, Decimal]]  # balance, reserved
    holds: dict[tuple[UUID, str], Decimal]  # (customer, status) -> amount
    products: dict[UUID, tuple[int, int]]  # stock, reserved
    reservations: dict[tuple[UUID, str], int]  # (product, status) -> units
    orders: dict[UUID, Order]
    sagas: dict[UUID, SagaInstance]
    running: dict[UUID, int]  # saga -> attempts RUNNING
    expired_waits: dict[UUID, list[int]]  # saga -> ids of its expired wait rows
    crashes: dict[tuple[UUID, str], list[int]]  # (saga, step) -> ids of its CRASHED rows
    events: dict[tuple[str, str], int]  # (order id, type) -> how many

    @classmethod
    def take(cls, machine: "PlaceOrderModel") -> "Snapshot":
        steps = SagaStep.objects.filter(saga_id__in=[p.saga_id for p in machine.placed])
        customers, products = list(machine.customer_ids.values()), list(machine.products.values())
        expired_waits, crashes, running = defaultdict(list), defaultdict(list), Counter()
        for saga_id, name, status, row in steps.filter(
            status__in=[SagaStep.Status.RUNNING, SagaStep.Status.CRASHED, SagaStep.Status.FAILED]
        ).values_list("saga_id", "name", "status", "id"):
            if status == SagaStep.Status.RUNNING:
                running[saga_id] += 1
            elif status == SagaStep.Status.CRASHED:
                crashes[(saga_id, name)].append(row)
            elif name == "await_acceptance":
                expired_waits[saga_id].append(row)
        return cls(
            customers={
                pk: (b, r)
                for pk, b, r in Customer.objects.filter(pk__in=customers).values_list("pk", "balance", "reserved")
            },
            holds={
                (c, s): a
                for c, s, a in FundsHold.objects.filter(customer_id__in=customers)
                .values_list("customer_id", "status")
                .annotate(a=Sum("amount"))
                .values_list("customer_id", "status", "a")
            },
            products={
                pk: (s, r)
                for pk, s, r in Product.objects.filter(pk__in=products).values_list("pk", "stock", "reserved")
            },
            reservations={
                (p, s): q
                for p, s, q in StockReservationLine.objects.filter(product_id__in=products)
                .values_list("product_id", "reservation__status")
                .annotate(q=Sum("quantity"))
                .values_list("product_id", "reservation__status", "q")
            },
            orders=Order.objects.in_bulk([p.order_id for p in machine.placed]),
            sagas=SagaInstance.objects.in_bulk([p.saga_id for p in machine.placed]),
            running=running,
            expired_waits=expired_waits,
            crashes=crashes,
            events={
                (k, t): n
                for k, t, n in machine._outbox()
                .filter(type__in=ONCE_PER_ORDER)
                .order_by()
                .values_list("aggregate_id", "type")
                .annotate(n=Count("position"))
                .values_list("aggregate_id", "type", "n")
            },
        )


def _may_still_wait(order: Order, saga: SagaInstance, now: datetime) -> bool | None:
    if order.fulfillment != Order.Fulfillment.DELIVERY or order.status in FINISHED:
        return False
    if saga.direction == Direction.BACKWARD:
        return False  # rolling back
    if saga.status == SagaStatus.FAILED or (saga.deadline and now >= saga.deadline) or saga.step_index > WAIT:
        return None  # stopped for an operator, out of time, or its wait already ended
    if saga.status == SagaStatus.WAITING and saga.step_index == WAIT:
        return saga.timer_at > now  # an expired wait refuses, even before a worker notices
    return True  # waiting, or not there yet: kept for the wait


def _saga_words(saga: SagaInstance, now: datetime | None = None) -> str:
    at = saga.current_step or "-"
    words = f"{saga.status} {saga.direction.lower()} at {at} (step {saga.step_index}, attempt {saga.attempts}"
    if now and saga.retry_at:
        words += f", retry in {(saga.retry_at - now).total_seconds():.0f} s"
    if now and saga.timer_at:
        words += f", timer in {(saga.timer_at - now).total_seconds():.0f} s"
    return words + ")"


# --- how long, and with which seed -------------------------------------------------------------

# `make test`: bounded, and the first bug found is shrunk and shown. `make fuzz-engine`
# (FUZZ_EXAMPLES=5000 FUZZ_SEED=...): longer, every distinct bug found is shrunk and shown.
settings.register_profile(
    "engine-model",
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],  # no explain: slow, unread
    database=DirectoryBasedExampleDatabase(Path(django_settings.BASE_DIR) / ".devstack" / "hypothesis"),
)
settings.register_profile(
    "engine-fuzz",
    parent=settings.get_profile("engine-model"),
    max_examples=int(os.environ.get("FUZZ_EXAMPLES") or 5000),
    stateful_step_count=int(os.environ.get("FUZZ_STEPS") or 50),
    report_multiple_bugs=True,
)


FUZZING = bool(os.environ.get("FUZZ_EXAMPLES"))


# Shrinking a failure found late may take minutes (the example is worth it); a fuzz run has no limit.
@pytest.mark.timeout(0 if FUZZING else 900)
def test_the_place_order_saga_keeps_its_promises(db):
    machine = PlaceOrderModel
    if os.environ.get("FUZZ_SEED"):
        machine = seed(int(os.environ["FUZZ_SEED"]))(PlaceOrderModel)
    run_state_machine_as_test(machine, settings=settings.get_profile("engine-fuzz" if FUZZING else "engine-model"))
