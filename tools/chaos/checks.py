"""What must hold once the faults stop and the shop is at rest: the contract's invariants, read
from the database (the checker's own connection), from Kafka (a consumer of its own, reading until
the topics are idle) and from the payment provider's ledger.

Each check is an `Invariant`: what was checked, and every violation with the evidence to find it.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import pairwise
from typing import Any

from django.conf import settings
from django.db.models import Count, QuerySet
from kafka import KafkaConsumer, TopicPartition

from customers.models import Customer, FundsHold
from inventory.models import Product, StockReservation
from orders.models import Order
from payments.models import Payment
from saga.models import ACTIVE, DeadLetter, InboxMessage, OutboxMessage, SagaInstance, SagaStatus, SagaStep

from .clients import Exchange, Record
from .faults import Fault

TERMINAL_EVENTS = {"order.confirmed": "CONFIRMED", "order.rejected": "REJECTED", "order.cancelled": "CANCELLED"}
SAGA_OF = {"CONFIRMED": SagaStatus.COMPLETED, "REJECTED": SagaStatus.COMPENSATED, "CANCELLED": SagaStatus.COMPENSATED}
# A Kafka acceptance consumed this long before its wait's deadline must have been used.
DEADLINE_MARGIN = timedelta(seconds=0.5)


@dataclass
class Invariant:
    name: str
    checked: int = 0
    violations: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def passed(self) -> bool:
        return not self.violations

    def fail(self, violation: str) -> None:
        self.violations.append(violation)

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "passed": self.passed,
            "checked": self.checked,
            "violations": len(self.violations),
            "examples": self.violations[:50],
            "note": self.note,
        }


# --- the databases' messaging tables -------------------------------------------------------------


def outbox_databases() -> list[str]:
    """The aliases of every database with an outbox (and inbox, dead letters): the monolith's one;
    in services each context's (the checker, an orders process, reaches them all)."""
    return list(settings.DATABASES)


def outboxes(alias: str) -> QuerySet[OutboxMessage]:
    return OutboxMessage.objects.using(alias)


def unsent() -> int:
    return sum(outboxes(alias).filter(sent_at__isnull=True).count() for alias in outbox_databases())


# --- at rest -----------------------------------------------------------------------------------


def wait_until_at_rest(timeout: float) -> bool:
    """Every saga finished and every outbox message (of every database) sent, or False at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        moving = SagaInstance.objects.filter(status__in=ACTIVE).exists()
        if not moving and not unsent():
            return True
        time.sleep(0.5)
    return False


# --- Kafka ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    id: str
    topic: str
    type: str
    key: str
    payload: dict[str, Any]


@dataclass
class Reading:
    deliveries: int = 0
    by_id: dict[str, Message] = field(default_factory=dict)
    duplicates: Counter[str] = field(default_factory=Counter)  # topic -> deliveries of an id seen before
    unreadable: int = 0
    seconds: float = 0.0
    complete: bool = False  # every outbox message was seen before the deadline

    def by_key(self) -> dict[str, list[Message]]:
        grouped: dict[str, list[Message]] = defaultdict(list)
        for message in self.by_id.values():
            grouped[message.key].append(message)
        return grouped


def read_topics(bootstrap: str, topics: Iterable[str], *, expected: set[str], idle: float, timeout: float) -> Reading:
    """Everything in `topics` from the beginning, by a consumer of our own (manual assignment, no
    group), until no record came for `idle` seconds and every `expected` id was seen, or the
    deadline. Not up to the end offsets the broker reports: after a freeze the development broker
    reports stale ones."""
    reading, began = Reading(), time.monotonic()
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        last_record = time.monotonic()
        while time.monotonic() - began < timeout:
            batch = consumer.poll(timeout_ms=500, max_records=10_000)
            for records in batch.values():
                for record in records:
                    _take(reading, record)
                last_record = time.monotonic()
            if time.monotonic() - last_record >= idle and expected <= reading.by_id.keys():
                reading.complete = True
                break
    finally:
        consumer.close()
    reading.seconds = round(time.monotonic() - began, 1)
    return reading


def _take(reading: Reading, record: Any) -> None:
    reading.deliveries += 1
    try:
        body = json.loads(record.value)
        message = Message(str(body["id"]), record.topic, str(body["type"]), record.key.decode(), body["payload"])
    except (ValueError, KeyError, TypeError, AttributeError):
        reading.unreadable += 1
        return
    if message.id in reading.by_id:
        reading.duplicates[record.topic] += 1
    else:
        reading.by_id[message.id] = message


# --- the invariants -----------------------------------------------------------------------------


@dataclass
class Evidence:
    record: Record
    faults: list[Fault]
    reading: Reading
    ledger: list[dict[str, Any]]
    acceptance_timeout: float
    at_rest: bool
    kinds: tuple[str, ...]  # the run's fault kinds (its topology's)


def status_of(order: Order) -> str:
    return f"{order.status}/{order.reason}" if order.reason else order.status


def check(evidence: Evidence) -> list[Invariant]:
    orders = {str(o.pk): o for o in Order.objects.prefetch_related("lines")}
    sagas = {str(s.aggregate_id): s for s in SagaInstance.objects.filter(type="place_order")}
    return [
        at_rest(evidence),
        no_saga_failed(),
        money(evidence.record, orders),
        stock(evidence.record, orders),
        orders_agree_with_sagas(orders, sagas),
        order_reasons(orders),
        order_events(orders, evidence.reading),
        nothing_lost_on_kafka(evidence.reading),
        one_key_in_order(evidence.reading),
        nothing_parked(),
        side_effects_once(orders, evidence.reading),
        provider_calls(orders, evidence.ledger),
        idempotency(evidence.record, orders),
        acceptances(evidence, orders, sagas),
        designed_outcomes(evidence.record, orders),
        no_server_errors(evidence.record, evidence.faults, orders),
        faults_injected(evidence.faults, evidence.kinds),
        intake_while_redis_frozen(evidence.record, evidence.faults),
        clients_ran(evidence.record),
    ]


def at_rest(evidence: Evidence) -> Invariant:
    check = Invariant("every saga terminal, every outbox message sent (at rest before the deadline)")
    check.checked = SagaInstance.objects.count()
    for saga in SagaInstance.objects.filter(status__in=ACTIVE)[:50]:
        check.fail(
            f"saga {saga.id} (order {saga.aggregate_id}) still {saga.status} at {saga.current_step}: {saga.error}"
        )
    never_sent = unsent()
    if never_sent:
        check.fail(f"{never_sent} outbox messages never sent")
    if not evidence.at_rest and check.passed:
        check.fail("not at rest before the deadline")
    return check


def no_saga_failed() -> Invariant:
    check = Invariant("no saga FAILED (none is designed to)")
    check.checked = SagaInstance.objects.count()
    for saga in SagaInstance.objects.filter(status=SagaStatus.FAILED):
        check.fail(f"saga {saga.id} (order {saga.aggregate_id}) FAILED at {saga.current_step}: {saga.error}")
    return check


def money(record: Record, orders: dict[str, Order]) -> Invariant:
    check = Invariant("money: balance = start - CONFIRMED totals, nothing reserved, nothing negative")
    spent: dict[str, Decimal] = defaultdict(Decimal)
    for order in orders.values():
        if order.status == Order.Status.CONFIRMED:
            spent[str(order.customer_id)] += order.total
    customers = list(Customer.objects.all())
    check.checked = len(customers)
    for customer in customers:
        cid = str(customer.pk)
        start = record.start_balances.get(cid)
        if start is None:
            check.fail(f"customer {cid} was not created by the run's clients")
            continue
        expected = start - spent.pop(cid, Decimal("0"))
        if customer.balance != expected or customer.reserved != 0 or customer.balance < 0:
            check.fail(
                f"customer {cid}: balance {customer.balance} (expected {expected}), reserved {customer.reserved}"
            )
    for cid, total in spent.items():
        check.fail(f"CONFIRMED orders worth {total} of customer {cid}, who does not exist")
    return check


def stock(record: Record, orders: dict[str, Order]) -> Invariant:
    check = Invariant("stock: stock = start - CONFIRMED quantities, nothing reserved, nothing negative")
    sold: Counter[str] = Counter()
    for order in orders.values():
        if order.status == Order.Status.CONFIRMED:
            for line in order.lines.all():
                sold[str(line.product_id)] += line.quantity
    products = list(Product.objects.all())
    check.checked = len(products)
    for product in products:
        pid = str(product.pk)
        start = record.start_stock.get(pid)
        if start is None:
            check.fail(f"product {pid} was not created by the run's clients")
            continue
        expected = start - sold.pop(pid, 0)
        if product.stock != expected or product.reserved != 0 or product.stock < 0:
            check.fail(
                f"product {product.sku}: stock {product.stock} (expected {expected}), reserved {product.reserved}"
            )
    for pid, quantity in sold.items():
        check.fail(f"{quantity} units CONFIRMED of product {pid}, which does not exist")
    return check


def orders_agree_with_sagas(orders: dict[str, Order], sagas: dict[str, SagaInstance]) -> Invariant:
    check = Invariant("every order's status agrees with its saga (status, reason)")
    check.checked = len(orders)
    for oid, order in orders.items():
        saga = sagas.get(oid)
        if saga is None or saga.id != order.saga_id:
            check.fail(f"order {oid} {status_of(order)}: its saga {order.saga_id} is not the order's")
            continue
        expected = SAGA_OF.get(order.status)
        reason = saga.reason if saga.status == SagaStatus.COMPENSATED else None
        if saga.status != expected or (order.reason or None) != (reason or None):
            check.fail(f"order {oid} {status_of(order)} but saga {saga.id} {saga.status} reason {saga.reason!r}")
    for oid in sagas.keys() - orders.keys():
        check.fail(f"saga {sagas[oid].id} belongs to no order ({oid})")
    return check


def order_reasons(orders: dict[str, Order]) -> Invariant:
    check = Invariant("every rejected or cancelled order says why in the contract's words; no other has a reason")
    check.checked = len(orders)
    for oid, order in orders.items():
        ended_badly = order.status in (Order.Status.REJECTED, Order.Status.CANCELLED)
        honest = order.reason in Order.Reason.values if ended_badly else order.reason is None
        if not honest:
            check.fail(f"order {oid} {order.status} with reason {order.reason!r}")
    return check


def order_events(orders: dict[str, Order], reading: Reading) -> Invariant:
    check = Invariant("Kafka: one order.created and exactly one terminal event per order, agreeing with it")
    check.checked = len(orders)
    by_key = reading.by_key()
    for oid, order in orders.items():
        events = [m for m in by_key.get(oid, []) if m.topic.endswith("order_events")]
        created = [m for m in events if m.type == "order.created"]
        final = [m for m in events if m.type in TERMINAL_EVENTS]
        if len(created) != 1 or len(final) != 1:
            check.fail(f"order {oid} {status_of(order)}: {len(created)} order.created, {len(final)} terminal events")
            continue
        said = TERMINAL_EVENTS[final[0].type]
        reason = final[0].payload.get("reason")
        if said != order.status or (reason or None) != (order.reason or None):
            check.fail(f"order {oid} {status_of(order)} but Kafka said {final[0].type} {reason or ''}")
    return check


def nothing_lost_on_kafka(reading: Reading) -> Invariant:
    check = Invariant("Kafka: every outbox message delivered (read until the topics were idle)")
    sent = {str(i): alias for alias in outbox_databases() for i in outboxes(alias).values_list("id", flat=True)}
    check.checked = len(sent)
    missing = [i for i in sent if i not in reading.by_id]
    for message_id in missing[:20]:
        row = outboxes(sent[message_id]).get(id=message_id)
        check.fail(f"{row.type} {message_id} (key {row.aggregate_id}, sent {row.sent_at}) never read from {row.topic}")
    if len(missing) > 20:
        check.fail(f"... and {len(missing) - 20} more")
    duplicated = sum(reading.duplicates.values())
    check.note = f"{reading.deliveries} deliveries, {duplicated} duplicates by id, read in {reading.seconds} s"
    return check


def one_key_in_order(reading: Reading) -> Invariant:
    """Per outbox, topic and key (an order's messages), the first arrival of each message follows
    the outbox's positions, taken at INSERT: the relay sends none while a row below it may still
    commit (slow_commit holds such rows open). Positions follow commit order for one order's steps,
    which its saga's row lock serializes. Two databases' outboxes (services) are two orders: a
    participant's replies and orders' messages of one key are not ordered with each other."""
    check = Invariant("Kafka: per topic and key, messages first arrive in outbox order (late commits included)")
    positions = {
        str(i): (alias, p) for alias in outbox_databases() for i, p in outboxes(alias).values_list("id", "position")
    }
    streams: dict[tuple[str, str, str], list[tuple[int, str]]] = defaultdict(list)
    for message in reading.by_id.values():  # first arrivals; each partition read in offset order
        if message.id in positions:
            alias, position = positions[message.id]
            streams[alias, message.topic, message.key].append((position, message.type))
    check.checked = len(streams)
    overtaken = [
        f"{key} on {topic}: {then[1]} (position {then[0]}) arrived after {first[1]} (position {first[0]})"
        for (_, topic, key), arrived in streams.items()
        for first, then in pairwise(arrived)
        if then[0] < first[0]
    ]
    for violation in overtaken[:20]:
        check.fail(violation)
    if len(overtaken) > 20:
        check.fail(f"... and {len(overtaken) - 20} more")
    return check


def nothing_parked() -> Invariant:
    """The run sends no poison: every message the consumer or the participants read was usable."""
    check = Invariant("no message parked as a dead letter (the run sends none that is unusable)")
    check.checked = sum(InboxMessage.objects.using(alias).count() for alias in outbox_databases())
    for alias in outbox_databases():
        for letter in DeadLetter.objects.using(alias).all()[:20]:
            check.fail(f"{letter.topic}[{letter.partition}]@{letter.offset} ({alias}): {letter.error}")
    return check


def _count(messages: list[Message], type: str) -> int:
    return sum(1 for m in messages if m.type == type)


def side_effects_once(orders: dict[str, Order], reading: Reading) -> Invariant:
    """The participants' records and their events: one capture, one funds consumption and one
    stock commit per CONFIRMED order, none for the others, and no step succeeded twice."""
    check = Invariant("no side effect twice: one capture, one funds consumption, one stock commit per CONFIRMED order")
    payments = dict(Payment.objects.values_list("order_id", "status"))
    holds = dict(FundsHold.objects.values_list("order_id", "status"))
    reservations = dict(StockReservation.objects.values_list("order_id", "status"))
    by_key = reading.by_key()
    check.checked = len(orders)
    for oid, order in orders.items():
        confirmed, lines = order.status == Order.Status.CONFIRMED, bool(order.lines.all())
        records = (payments.get(order.pk), holds.get(order.pk), reservations.get(order.pk))
        if confirmed:
            wanted = ("CAPTURED", "CONSUMED", "COMMITTED" if lines else None)
            if records != wanted:
                check.fail(f"CONFIRMED order {oid}: payment, funds, stock are {records}, not {wanted}")
        elif records[0] == "CAPTURED" or records[1] == "CONSUMED" or records[2] == "COMMITTED":
            check.fail(f"{status_of(order)} order {oid}: payment, funds, stock are {records}")
        events = by_key.get(oid, [])
        once = int(confirmed)
        counts = {
            "payment.captured": (_count(events, "payment.captured"), once),
            "funds.consumed": (_count(events, "funds.consumed"), once),
            "stock.committed": (_count(events, "stock.committed"), once if lines else 0),
        }
        for type, (seen, expected) in counts.items():
            if seen != expected:
                check.fail(f"{status_of(order)} order {oid}: {seen} {type} events by distinct id, not {expected}")
        for type in ("payment.authorized", "payment.voided", "funds.held", "funds.released", "stock.reserved"):
            if _count(events, type) > 1:
                check.fail(f"order {oid}: {_count(events, type)} {type} events by distinct id")
    twice = (
        SagaStep.objects.filter(status=SagaStep.Status.SUCCEEDED)
        .values("saga_id", "name", "kind")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    for row in twice[:20]:
        check.fail(f"saga {row['saga_id']}: {row['name']} ({row['kind']}) succeeded {row['n']} times")
    return check


def provider_calls(orders: dict[str, Order], ledger: list[dict[str, Any]]) -> Invariant:
    """What reached the payment provider: one authorization per order (repeats of one idempotency
    key count once), a void after every approved authorization of an order that did not confirm,
    one capture per CONFIRMED order and none for the others."""
    check = Invariant("provider: one authorization per order, a void for each one not confirmed, one capture per sale")
    calls: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for index, call in enumerate(ledger):
        calls[call["order_id"]].append((index, call))
    repeats = sum(n - 1 for n in Counter((c["call"], c["key"]) for c in ledger).values())
    check.checked = len(calls)
    for oid in calls.keys() - orders.keys():
        check.fail(f"the provider was called for order {oid}, which does not exist")
    for oid, order in orders.items():
        mine = calls.get(oid, [])
        authorizations = [(i, c) for i, c in mine if c["call"] == "authorize"]
        approved = [i for i, c in authorizations if c["approved"]]
        voids = [i for i, c in mine if c["call"] == "void"]
        capture_keys = {c["key"] for _, c in mine if c["call"] == "capture"}
        if len({c["key"] for _, c in authorizations}) > 1:
            check.fail(f"order {oid}: authorized under {len({c['key'] for _, c in authorizations})} keys")
        if order.status == Order.Status.CONFIRMED:
            if not approved or len(capture_keys) != 1 or voids:
                check.fail(
                    f"CONFIRMED order {oid}: {len(approved)} approved authorizations, "
                    f"{len(capture_keys)} captures, {len(voids)} voids at the provider"
                )
        else:
            if capture_keys:
                check.fail(f"{status_of(order)} order {oid} was captured at the provider")
            if approved and not any(v > approved[-1] for v in voids):
                check.fail(f"{status_of(order)} order {oid}: its authorization at the provider was never voided")
    check.note = f"{len(ledger)} provider calls, {repeats} repeats of an idempotency key (counted once)"
    return check


def idempotency(record: Record, orders: dict[str, Order]) -> Invariant:
    check = Invariant("each Idempotency-Key made exactly one order; the same key with another body got 409")
    by_key: dict[str, list[str]] = defaultdict(list)
    for oid, order in orders.items():
        if order.idempotency_key:
            by_key[order.idempotency_key.split(":", 1)[1]].append(oid)
    for placed in record.placed:
        if placed.key is None:
            continue
        check.checked += 1
        made = by_key.get(placed.key, [])
        if len(made) > 1 or (placed.order_id is not None and made != [placed.order_id]):
            check.fail(f"key {placed.key} ({placed.scenario}): answered order {placed.order_id}, made {made}")
    for group in record.duplicates:
        check.checked += 1
        answered = {a.data["id"] for a in group.answers if a.status == 202 and isinstance(a.data, dict)}
        made = by_key.get(group.key, [])
        if len(made) > 1 or len(answered) > 1 or (answered and answered != set(made)):
            check.fail(f"key {group.key} sent {len(group.answers)} times at once: answered {answered}, made {made}")
        other = group.other_body
        if other is None or other.status != 409:
            check.fail(f"key {group.key} with another body was answered {other.statuses if other else None}, not 409")
    return check


def acceptances(evidence: Evidence, orders: dict[str, Order], sagas: dict[str, SagaInstance]) -> Invariant:
    """A courier's acceptance that reached the shop before the deadline (a 202 from the API, or a
    Kafka message consumed before the wait expired) confirmed its order. The one excuse: a fault
    made a step fail for good, and the saga rolled back (never by a timeout of the wait)."""
    check = Invariant("every courier acceptance sent before the deadline confirmed its order")
    late = confirmed = gave_up = 0
    window = timedelta(seconds=evidence.acceptance_timeout)
    sent = [p.acceptance.message_id for p in evidence.record.placed if p.acceptance and p.acceptance.message_id]
    received = dict(InboxMessage.objects.filter(id__in=sent).values_list("id", "received_at"))
    for placed in evidence.record.placed:
        acceptance, order = placed.acceptance, orders.get(placed.order_id or "")
        if acceptance is None or order is None:
            continue
        if acceptance.via == "api":
            if 202 not in acceptance.statuses:
                continue  # refused (409: too late) or never answered
            how = "accepted through the API (202)"
        else:
            if acceptance.acked_at is None:
                continue  # never reached Kafka
            at = received.get(uuid.UUID(acceptance.message_id))
            if at is None:
                check.fail(f"order {order.pk}: acceptance {acceptance.message_id} acknowledged, never consumed")
                continue
            wait = _wait_started(sagas.get(str(order.pk)))
            if wait is not None and at >= wait + window - DEADLINE_MARGIN:
                late += 1  # consumed after the deadline: refused where it was delivered, as designed
                continue
            how = f"acceptance consumed at {at:%H:%M:%S.%f}, in time"
        check.checked += 1
        if order.status == Order.Status.CONFIRMED:
            confirmed += 1
        elif order.reason != Order.Reason.ACCEPTANCE_TIMEOUT and not _refused(sagas.get(str(order.pk))):
            gave_up += 1
        else:
            check.fail(f"order {order.pk}: {how}, yet {status_of(order)}")
    check.note = (
        f"{confirmed} confirmed, {gave_up} rolled back after a fault exhausted a step's retries; "
        f"{late} Kafka acceptances consumed after their deadline (refused by design)"
    )
    return check


def _refused(saga: SagaInstance | None) -> bool:
    return saga is not None and saga.steps.filter(kind=SagaStep.Kind.ACTION, status=SagaStep.Status.REFUSED).exists()


def _wait_started(saga: SagaInstance | None) -> datetime | None:
    if saga is None:
        return None
    step = saga.steps.filter(name="await_acceptance", kind=SagaStep.Kind.ACTION).order_by("id").first()
    return step.started_at if step is not None else None


def designed_outcomes(record: Record, orders: dict[str, Order]) -> Invariant:
    """Orders whose outcome no fault may change: an unknown customer, a declined amount, a blocked
    customer, a cancel answered 202, a delivery nobody accepted; and every order answered 202 exists."""
    check = Invariant("orders with a designed outcome got it (unknown customer, declined, cancelled, never accepted)")
    for placed in record.placed:
        if placed.order_id is None:
            continue
        check.checked += 1
        order = orders.get(placed.order_id)
        if order is None:
            check.fail(f"order {placed.order_id} was answered 202 ({placed.scenario}) but does not exist")
            continue
        got = status_of(order)
        if placed.expect and got != placed.expect:
            check.fail(f"order {order.pk} ({placed.scenario}) ended {got}, not {placed.expect}")
        if placed.never_accepted and order.status == Order.Status.CONFIRMED:
            check.fail(f"order {order.pk} was never accepted by a courier, yet CONFIRMED")
        if 202 in placed.cancel_statuses and got != "CANCELLED/CANCELLED_BY_CUSTOMER":
            check.fail(f"order {order.pk}: its cancel was answered 202, yet it ended {got}")
    return check


def faults_near(at: float, faults: list[Fault], t0: float) -> str:
    """The faults that began from 5 s before to 2 s after `at` (wall clock), or the nearest one."""
    near = [f for f in faults if -2 <= at - (t0 + f.at) <= 5] or sorted(faults, key=lambda f: abs(at - (t0 + f.at)))[:1]
    return ", ".join(
        f"{abs(gap):.1f} s {'after' if gap >= 0 else 'before'} {f.kind}" for f in near for gap in [at - (t0 + f.at)]
    )


def no_server_errors(record: Record, faults: list[Fault], orders: dict[str, Order]) -> Invariant:
    """No answer is a 5xx other than a 503 with Retry-After (come back later); and no failure is
    answered for an order that was in fact placed (seen when the client's retry with the same key
    got the order, created before the failure was answered)."""
    check = Invariant("no 5xx answered to clients (503 excepted), no failure answered for an order placed")
    check.checked = len(record.exchanges)
    errors = [e for e in record.exchanges if e.status >= 500 and (e.status != 503 or "without Retry-After" in e.error)]
    for exchange in errors:
        check.fail(_describe(exchange, faults, record))
    created = {o.idempotency_key.split(":", 1)[1]: o for o in orders.values() if o.idempotency_key}
    for exchange in record.exchanges:
        order = created.get(exchange.key) if exchange.key else None
        failed = exchange.status >= 500  # no answer at all (a killed web worker) is not a failure answered
        placing = exchange.method == "POST" and exchange.path == "/api/orders"
        if order is not None and failed and placing and order.created_at.timestamp() < exchange.at + exchange.elapsed:
            answer = exchange.status or "nothing"
            check.fail(f"order {order.pk} was placed, yet answered {answer}: {_describe(exchange, faults, record)}")
    return check


def _describe(exchange: Exchange, faults: list[Fault], record: Record) -> str:
    when = time.strftime("%H:%M:%S", time.localtime(exchange.at))
    near = faults_near(exchange.at, faults, record.t0)
    return f"{when} {exchange.method} {exchange.path} ({exchange.scenario}) -> {exchange.status} {exchange.error}" + (
        f" [sent {near}]" if near else ""
    )


def faults_injected(faults: list[Fault], kinds: tuple[str, ...]) -> Invariant:
    check = Invariant("every fault kind injected; the standby relay took over each time")
    check.checked = len(faults)
    done = Counter(f.kind for f in faults if not f.error)
    for kind in kinds:
        if not done[kind]:
            check.fail(f"no {kind} fault was injected")
    for fault in faults:
        if fault.error and not fault.error.startswith("skipped"):
            check.fail(f"{fault.kind} at {fault.at} s: {fault.error}")
    return check


# Seconds within which an order placed while Redis is frozen is answered: Redis is only the doorbell
# (a database blip overlapping the freeze may add its own few seconds); a hung request takes the freeze.
REDIS_FROZEN_ANSWER_S = 5.0


def intake_while_redis_frozen(record: Record, faults: list[Fault]) -> Invariant:
    check = Invariant(f"orders placed while Redis was frozen were answered within {REDIS_FROZEN_ANSWER_S:.0f} s")
    freezes = [(f.at, f.ended_at or f.at) for f in faults if f.kind == "freeze_redis" and not f.error]
    placing = [
        e
        for e in record.exchanges
        if e.method == "POST" and e.path == "/api/orders" and any(a <= e.at - record.t0 <= b for a, b in freezes)
    ]
    check.checked = len(placing)
    for exchange in placing:
        if exchange.elapsed > REDIS_FROZEN_ANSWER_S:
            check.fail(f"answered in {exchange.elapsed:.1f} s: {_describe(exchange, faults, record)}")
    return check


def clients_ran(record: Record) -> Invariant:
    check = Invariant("the clients ran without errors of their own")
    check.checked = len(record.placed)
    for error in record.client_errors:
        check.fail(error)
    return check
