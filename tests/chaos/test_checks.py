"""The chaos run's checker catches what it is there to catch: each invariant fails on a made-up
violation and passes on the same data made right. (A checker that never fails proves nothing.)"""

import itertools
import random
import uuid
from decimal import Decimal

import pytest

from customers import services as customers
from inventory import services as inventory
from orders.models import Order, OrderLine
from saga.messaging import publish
from saga.models import SagaInstance, SagaStatus
from tools.chaos import checks
from tools.chaos.clients import Acceptance, Answer, Duplicates, Exchange, Placed, Record
from tools.chaos.faults import KINDS, Fault, Timing, kinds, plan


def order(customer_id, total: str, status: str = "CONFIRMED", reason: str | None = None, **fields) -> Order:
    return Order.objects.create(customer_id=customer_id, total=Decimal(total), status=status, reason=reason, **fields)


def message(type: str, key: str, **payload) -> checks.Message:
    return checks.Message(str(uuid.uuid4()), "order_events", type, key, payload)


def reading_of(*messages: checks.Message) -> checks.Reading:
    return checks.Reading(by_id={m.id: m for m in messages})


def test_money_fails_on_a_balance_that_missed_a_sale_and_passes_once_it_is_taken(db):
    ada = customers.customer_create(name="Ada", balance=Decimal("100.00"))
    record = Record(start_balances={str(ada.pk): Decimal("100.00")})
    sale = order(ada.pk, "10.00")
    orders = {str(sale.pk): sale}
    assert not checks.money(record, orders).passed
    ada.balance = Decimal("90.00")
    ada.save()
    assert checks.money(record, orders).passed


def test_stock_fails_on_units_reserved_at_rest(db):
    widget = inventory.product_create(sku="W", name="w", price=Decimal("1.00"), stock=5)
    sale = order(uuid.uuid4(), "2.00")
    OrderLine.objects.create(order=sale, product_id=widget.pk, sku="W", quantity=2, unit_price=Decimal("1.00"))
    record = Record(start_stock={str(widget.pk): 5})
    widget.stock, widget.reserved = 3, 1
    widget.save()
    assert "reserved 1" in checks.stock(record, {str(sale.pk): sale}).violations[0]
    widget.reserved = 0
    widget.save()
    assert checks.stock(record, {str(sale.pk): sale}).passed


def test_an_order_must_agree_with_its_saga():
    saga_id, order_id = uuid.uuid4(), uuid.uuid4()
    sale = Order(pk=order_id, customer_id=uuid.uuid4(), total=1, status="REJECTED", reason="OUT_OF_STOCK")
    sale.saga_id = saga_id
    saga = SagaInstance(id=saga_id, aggregate_id=order_id, status=SagaStatus.COMPENSATED, reason="OUT_OF_STOCK")
    assert checks.orders_agree_with_sagas({str(order_id): sale}, {str(order_id): saga}).passed
    saga.reason = "INSUFFICIENT_CREDIT"
    assert not checks.orders_agree_with_sagas({str(order_id): sale}, {str(order_id): saga}).passed


def test_order_events_count_distinct_ids_and_want_exactly_one_terminal_event():
    sale = Order(pk=uuid.uuid4(), customer_id=uuid.uuid4(), total=1, status="CONFIRMED")
    key = str(sale.pk)
    created, confirmed = message("order.created", key), message("order.confirmed", key)
    assert checks.order_events({key: sale}, reading_of(created, confirmed)).passed
    twice = message("order.rejected", key, reason="OUT_OF_STOCK")
    assert not checks.order_events({key: sale}, reading_of(created, confirmed, twice)).passed
    assert not checks.order_events({key: sale}, reading_of(created)).passed


def test_reading_counts_a_redelivered_id_as_a_duplicate_not_as_a_second_event():
    class KafkaRecord:
        topic, key = "order_events", b"k"
        value = b'{"id": "1", "type": "order.created", "payload": {}}'

    reading = checks.Reading()
    checks._take(reading, KafkaRecord())
    checks._take(reading, KafkaRecord())
    assert (reading.deliveries, len(reading.by_id), reading.duplicates["order_events"]) == (2, 1, 1)


def test_one_key_in_order_fails_when_a_message_arrives_after_one_of_a_later_position(db):
    key, other = str(uuid.uuid4()), str(uuid.uuid4())
    held, confirmed, elsewhere = (
        publish(type="order.created", key=key, payload={}),
        publish(type="order.confirmed", key=key, payload={}),
        publish(type="order.created", key=other, payload={}),
    )

    def arrived(*rows) -> checks.Reading:
        return reading_of(*(checks.Message(str(r.id), r.topic, r.type, r.aggregate_id, {}) for r in rows))

    assert checks.one_key_in_order(arrived(held, elsewhere, confirmed)).passed  # other keys may interleave
    overtaken = checks.one_key_in_order(arrived(elsewhere, confirmed, held))
    assert not overtaken.passed and overtaken.checked == 2
    assert f"{key} on {held.topic}: order.created (position {held.position}) arrived after" in overtaken.violations[0]


def ledger_line(call: str, order_id, key: str, **details) -> dict:
    return {"call": call, "order_id": str(order_id), "key": key, "at": 0, **details}


def test_provider_calls_want_a_void_after_each_authorization_of_an_order_not_confirmed():
    rejected = Order(pk=uuid.uuid4(), customer_id=uuid.uuid4(), total=1, status="REJECTED", reason="OUT_OF_STOCK")
    orders = {str(rejected.pk): rejected}
    authorized = ledger_line("authorize", rejected.pk, "a", approved=True)
    voided = ledger_line("void", rejected.pk, "v")
    assert not checks.provider_calls(orders, [authorized]).passed
    assert not checks.provider_calls(orders, [voided, authorized]).passed  # a void before it undoes nothing
    assert checks.provider_calls(orders, [authorized, authorized, voided]).passed  # one key: one authorization


def test_provider_calls_want_one_capture_per_sale_and_no_void():
    sale = Order(pk=uuid.uuid4(), customer_id=uuid.uuid4(), total=1, status="CONFIRMED")
    authorized = ledger_line("authorize", sale.pk, "a", approved=True)
    captured, again = ledger_line("capture", sale.pk, "c"), ledger_line("capture", sale.pk, "c2")
    other = ledger_line("authorize", sale.pk, "b", approved=True)
    orders = {str(sale.pk): sale}
    assert checks.provider_calls(orders, [authorized, captured, captured]).passed  # one key: one capture
    assert not checks.provider_calls(orders, [authorized, captured, again]).passed
    assert not checks.provider_calls(orders, [authorized]).passed
    assert not checks.provider_calls(orders, [authorized, other, captured]).passed
    assert not checks.provider_calls(orders, [authorized, captured, ledger_line("void", sale.pk, "v")]).passed


def test_idempotency_wants_one_order_per_key_and_a_409_for_another_body():
    first = Order(pk=uuid.uuid4(), customer_id=uuid.uuid4(), total=1, status="CONFIRMED", idempotency_key="1:k")
    answered = Answer(202, {"id": str(first.pk)}, [202])
    record = Record(duplicates=[Duplicates("k", [answered, answered], Answer(409, {}, [409]))])
    assert checks.idempotency(record, {str(first.pk): first}).passed
    record.duplicates[0].other_body = Answer(202, {"id": str(first.pk)}, [202])
    assert not checks.idempotency(record, {str(first.pk): first}).passed
    another = Answer(202, {"id": "other"}, [202])
    record = Record(duplicates=[Duplicates("k", [answered, another], Answer(409, {}, [409]))])
    assert not checks.idempotency(record, {str(first.pk): first}).passed


def test_an_order_accepted_through_the_api_must_not_time_out(db):
    sale = order(uuid.uuid4(), "1.00", status="CANCELLED", reason="ACCEPTANCE_TIMEOUT", fulfillment="delivery")
    placed = Placed("delivery_accept_api", {}, None, [202], str(sale.pk), 0.0)
    placed.acceptance = Acceptance(via="api", early=True, sent_at=0.0, statuses=[202])
    evidence = checks.Evidence(Record(placed=[placed]), [], checks.Reading(), [], 6, True, KINDS)
    assert not checks.acceptances(evidence, {str(sale.pk): sale}, {}).passed
    placed.acceptance.statuses = [409]  # refused: too late
    assert checks.acceptances(evidence, {str(sale.pk): sale}, {}).passed


def test_a_500_is_a_violation_a_503_is_not_and_a_failure_answered_for_a_placed_order_is_named(db):
    placed = order(uuid.uuid4(), "1.00", idempotency_key="1:k")
    later = placed.created_at.timestamp() + 1
    ok = Exchange(later, "GET", "/api/orders", 503, 0.1, "credit_only")
    assert checks.no_server_errors(Record(exchanges=[ok]), [], {}).passed
    bare = Exchange(later, "GET", "/api/orders", 503, 0.1, "credit_only", "503 without Retry-After: ...")
    assert not checks.no_server_errors(Record(exchanges=[bare]), [], {}).passed
    failed = Exchange(later, "POST", "/api/orders", 500, 0.1, "credit_only", "OperationalError", key="k")
    faults = [Fault("terminate_db", at=later)]
    check = checks.no_server_errors(Record(exchanges=[failed]), faults, {str(placed.pk): placed})
    assert len(check.violations) == 2 and "was placed, yet answered 500" in check.violations[1]
    reset = Exchange(later, "POST", "/api/orders", 0, 0.1, "credit_only", "RemoteDisconnected", key="k")
    assert checks.no_server_errors(Record(exchanges=[reset]), faults, {str(placed.pk): placed}).passed  # no answer


def test_an_order_that_hung_while_redis_was_frozen_is_a_violation():
    freeze = Fault("freeze_redis", at=10.0, ended_at=30.0)
    record = Record(t0=1000.0)
    quick = Exchange(1015.0, "POST", "/api/orders", 202, 0.6, "credit_only")
    record.exchanges = [quick, Exchange(1040.0, "POST", "/api/orders", 202, 9.0, "credit_only")]  # after the freeze
    assert checks.intake_while_redis_frozen(record, [freeze]).passed
    record.exchanges.append(Exchange(1012.0, "POST", "/api/orders", 202, 18.0, "credit_only"))
    check = checks.intake_while_redis_frozen(record, [freeze])
    assert check.checked == 2 and len(check.violations) == 1 and "answered in 18.0 s" in check.violations[0]


@pytest.mark.parametrize("topology", ["monolith", "services"])
@pytest.mark.parametrize("duration", [60, 600])
def test_the_fault_plan_has_every_kind_and_depends_only_on_the_seed(duration, topology):
    of_topology = kinds(topology)
    planned = plan(duration, random.Random(7), of_topology)
    assert planned == plan(duration, random.Random(7), of_topology) != plan(duration, random.Random(8), of_topology)
    assert {kind for _, kind in planned} == set(of_topology)
    assert all(0 < at < duration * 0.85 for at, _ in planned)
    if duration >= 300:  # several times each; a freeze ends before the next one
        assert min(sum(1 for _, k in planned if k == kind) for kind in of_topology) >= 5
        freezes = [at for at, kind in planned if kind == "freeze_broker"]
        assert all(b - a >= Timing.for_duration(duration).freeze[1] for a, b in itertools.pairwise(freezes))


def test_the_services_topology_fails_each_participant_contexts_consumer_relay_and_database():
    assert set(kinds("services")) - set(KINDS) == {
        f"{kind}:{context}"
        for kind in ("kill_consumer", "kill_relay", "terminate_db")
        for context in ("customers", "inventory", "payments")
    }
    assert set(KINDS) - set(kinds("services")) == {"kill_participant"}  # payments' consumer: kill_consumer:payments
