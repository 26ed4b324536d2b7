"""The outbox, the relay and the inbox against the real Kafka-compatible broker and PostgreSQL."""

import random
import re
import threading
import uuid
from collections import defaultdict
from decimal import Decimal

import pytest
from django.db import connection

from orders import services as orders
from orders.models import Order
from saga.messaging import publish, topic_for
from saga.messaging.relay import LOCK_KEY, Relay, outbox_lag_seconds
from saga.models import DeadLetter, InboxMessage, OutboxMessage
from tools.procs import ROOT

from .conftest import wait_for_terminal, wait_until
from .kafka import OwnBroker, read_topics, send
from .test_worker_sagas import Shop, order_status, place

pytestmark = pytest.mark.worker

ENVELOPE = {"id", "type", "correlation_id", "causation_id", "timestamp", "schema_version", "payload"}
TERMINAL = {"order.confirmed", "order.rejected", "order.cancelled"}
EVENT_ROLES = ["order_events", "inventory_events", "payment_events", "customer_events", "saga_events"]


@pytest.fixture
def shop(app_env) -> Shop:
    return Shop()


@pytest.fixture
def own_broker(app_env, settings, tmp_path):
    """A broker of this test's own, for the processes it starts and for itself."""
    broker = OwnBroker(ROOT / ".devstack" / f"broker-{uuid.uuid4().hex[:6]}")
    settings.KAFKA_BOOTSTRAP_SERVERS = broker.address
    app_env["KAFKA_BOOTSTRAP_SERVERS"] = broker.address
    yield broker
    broker.stop()


def mixed_orders(shop: Shop, count: int, seed: int = 1) -> list[Order]:
    rng = random.Random(seed)
    buyers = [shop.customer("300.00"), shop.customer("20.00"), shop.customer("50.00", blocked=True)]
    products = [shop.product("5.00", 40), shop.product("12.00", 400)]
    return [place(rng.choice(buyers).pk, rng.choice(products), rng.randint(1, 3)) for _ in range(count)]


def by_order(received) -> dict[str, list]:
    grouped = defaultdict(list)
    for message in received:
        grouped[message.body["payload"].get("order_id")].append(message)
    return grouped


def test_every_order_is_announced_once_in_causal_order_with_the_contract_envelope(start_worker, start_command, shop):
    start_worker()
    relay = start_command("relay_outbox", "--poll-interval", "0.2")
    placed = mixed_orders(shop, 198)
    rich = shop.customer("100.00")
    placed.append(place(rich.pk, shop.product("1.00", 0), 1))  # refused stock
    placed.append(place(rich.pk, amount=Decimal("5.00"), fulfillment="delivery"))
    wait_until(lambda: order_status(placed[-1])[0] == "AWAITING_ACCEPTANCE", what="delivery to wait")
    orders.order_cancel(order_id=placed[-1].pk)  # held funds released
    wait_for_terminal(placed)

    def all_settled(received):
        return sum(1 for m in received if m.body["type"] in TERMINAL) >= 200

    orders_topic = read_topics(["order_events"], all_settled)
    grouped = by_order(orders_topic)
    for order in placed:
        messages = grouped[str(order.pk)]
        assert {m.key for m in messages} == {str(order.pk)}
        created = {m.body["id"] for m in messages if m.body["type"] == "order.created"}
        terminal = {(m.body["id"], m.body["type"]) for m in messages if m.body["type"] in TERMINAL}
        assert len(created) == 1 and len(terminal) == 1, messages
        assert terminal.pop()[1] == f"order.{order_status(order)[0].lower()}"
        assert len({m.partition for m in messages}) == 1
        offsets = [m.offset for m in messages if m.body["type"] == "order.created"]
        assert min(offsets) < min(m.offset for m in messages if m.body["type"] in TERMINAL)

    everything = read_topics(EVENT_ROLES, lambda r: len(r) >= OutboxMessage.objects.count())
    for message in everything:
        body = message.body
        assert set(body) == ENVELOPE and body["schema_version"] == 1
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", body["timestamp"])
        assert {k: v for k, v in message.headers.items() if k != "request_id"} == {
            "type": body["type"],
            "correlation_id": body["correlation_id"],
        }
        assert set(message.headers) <= {"type", "correlation_id", "request_id"}
        uuid.UUID(body["id"])
    types = {m.body["type"] for m in everything}
    assert {
        "order.created",
        "order.confirmed",
        "order.rejected",
        "stock.reserved",
        "stock.released",
        "stock.committed",
        "stock.reservation_refused",
        "funds.held",
        "funds.hold_refused",
        "funds.released",
        "funds.consumed",
        "payment.authorized",
        "payment.voided",
        "payment.captured",
        "saga.started",
        "saga.compensating",
        "saga.completed",
        "saga.compensated",
        "customer.created",
        "product.created",
    } <= types
    saga_started = [m for m in everything if m.body["type"] == "saga.started"]
    assert all(m.body["correlation_id"] == m.body["payload"]["saga_id"] for m in saga_started)

    relay.stop()
    assert relay.process.returncode == 0
    assert outbox_lag_seconds() == 0.0


def test_broker_frozen_while_orders_run_then_everything_catches_up(start_worker, start_command, shop, own_broker):
    start_worker()
    relay = start_command("relay_outbox", "--poll-interval", "0.2")
    shop.customer("1.00")  # a first message, to see the relay through
    wait_until(lambda: OutboxMessage.objects.filter(sent_at__isnull=False).exists(), what="the relay to send")
    own_broker.freeze()
    placed = mixed_orders(shop, 200, seed=2)
    wait_for_terminal(placed, timeout=120)
    wait_until(lambda: outbox_lag_seconds() >= 20, timeout=60, what="the broker to be frozen for 20 s")
    own_broker.thaw()
    wait_until(lambda: outbox_lag_seconds() == 0.0, timeout=120, what="the relay to catch up")
    received = read_topics(["order_events"], lambda r: sum(m.body["type"] in TERMINAL for m in r) >= 200)
    grouped = by_order(received)
    for order in placed:
        assert {m.body["type"] for m in grouped[str(order.pk)]} & TERMINAL
        assert "order.created" in {m.body["type"] for m in grouped[str(order.pk)]}
    log = relay.log_path.read_text()
    assert log.count("Kafka unavailable") == 1 and log.count("Kafka reachable again") == 1


def test_a_broker_that_comes_back_empty_gets_a_new_producer(start_worker, start_command, shop, own_broker):
    start_worker()
    relay = start_command("relay_outbox", "--poll-interval", "0.2")
    first = mixed_orders(shop, 10, seed=3)
    wait_for_terminal(first)
    wait_until(lambda: outbox_lag_seconds() == 0.0, what="first orders relayed")
    own_broker.restart_empty()
    second = [place(o.customer_id, amount=Decimal("1.00")) for o in first]
    wait_for_terminal(second)
    wait_until(lambda: outbox_lag_seconds() == 0.0, timeout=90, what="relay to go on after the restart")
    received = read_topics(["order_events"], lambda r: sum(m.body["type"] in TERMINAL for m in r) >= len(second))
    assert {str(o.pk) for o in second} <= set(by_order(received))
    assert relay.process.poll() is None


def test_relay_killed_mid_batch_the_standby_delivers_everything(start_command, app_env):
    keys = [uuid.uuid4() for _ in range(40)]
    for seq in range(3000):
        publish(type="order.created", key=keys[seq % 40], payload={"seq": seq, "order_id": None})
    active = start_command("relay_outbox", "--batch-size", "100", "--poll-interval", "0.2")
    wait_until(lambda: OutboxMessage.objects.filter(sent_at__isnull=False).exists(), what="the relay to send")
    standby = start_command("relay_outbox", "--batch-size", "100", "--poll-interval", "0.2")
    active.kill()
    assert OutboxMessage.objects.filter(sent_at__isnull=True).exists(), "killed too late to be mid-way"
    wait_until(lambda: not OutboxMessage.objects.filter(sent_at__isnull=True).exists(), what="the standby to finish")
    received = read_topics(["order_events"], lambda r: len({m.body["id"] for m in r}) >= 3000)
    ids = {str(i) for i in OutboxMessage.objects.values_list("id", flat=True)}
    assert {m.body["id"] for m in received} == ids  # nothing missing, nothing unknown
    by_id = {m.body["id"]: m for m in received}
    assert all(by_id[m.body["id"]].body == m.body for m in received)  # duplicates are true copies
    first_seen: dict[str, list[int]] = defaultdict(list)
    for message in sorted(received, key=lambda m: (m.partition, m.offset)):
        sequence = first_seen[message.key]
        if message.body["payload"]["seq"] not in sequence:
            sequence.append(message.body["payload"]["seq"])
    assert all(seqs == sorted(seqs) for seqs in first_seen.values())
    assert standby.process.poll() is None


def test_consumer_acts_once_per_message_and_parks_poison(start_worker, start_command, shop):
    start_worker()
    start_command("consume_events")
    buyer, widget = shop.customer("100.00"), shop.product("1.00", 5)
    order = place(buyer.pk, widget, 1, fulfillment="delivery")
    wait_until(lambda: order_status(order)[0] == "AWAITING_ACCEPTANCE", what="order to wait")
    accepted = {
        "id": str(uuid.uuid4()),
        "type": "fulfillment.accepted",
        "correlation_id": None,
        "causation_id": None,
        "timestamp": "2026-11-23T12:00:00Z",
        "schema_version": 1,
        "payload": {"order_id": str(order.pk)},
    }
    send("fulfillment_events", b"{not json", key=str(order.pk))
    send("fulfillment_events", {**accepted, "id": str(uuid.uuid4()), "type": "fulfillment.teleported"})
    send("fulfillment_events", {**accepted, "id": str(uuid.uuid4()), "payload": {}})
    send("fulfillment_events", accepted, key=str(order.pk))
    send("fulfillment_events", accepted, key=str(order.pk))
    wait_until(lambda: order_status(order) == ("CONFIRMED", None), what="the accepted order to be confirmed")
    wait_until(lambda: DeadLetter.objects.count() == 3, what="three poison messages parked")
    assert InboxMessage.objects.filter(id=accepted["id"]).count() == 1
    errors = sorted(DeadLetter.objects.values_list("error", flat=True))
    assert any("not a message envelope" in e for e in errors) and any("no handler" in e for e in errors)
    assert any("order_id" in e for e in errors)
    wait_for_terminal([order])  # confirmed is the pivot; the capture comes after it
    shop.check()


def test_place_order_with_payments_as_a_separate_process(start_worker, start_command, shop):
    remote = {"SAGA_REMOTE_PARTICIPANTS": "payments"}
    start_worker(**remote)
    start_command("relay_outbox", "--poll-interval", "0.2", **remote)
    start_command("consume_events", **remote)
    payments = start_command("run_participant", "payments", **remote)
    buyer = shop.customer("100.00")
    widget, odd = shop.product("10.00", 10), shop.product("5.33", 10)
    approved = place(buyer.pk, widget, 2)
    declined = place(buyer.pk, odd, 2)  # 10.66: the sandbox provider declines it
    wait_for_terminal([approved, declined], timeout=120)
    assert order_status(approved) == ("CONFIRMED", None)
    assert order_status(declined) == ("REJECTED", "PAYMENT_DECLINED")
    shop.check()  # the declined order's stock and funds were released
    commands = read_topics(
        ["payment_commands"],
        lambda r: {"payment.authorize", "payment.capture", "payment.void"} <= {m.body["type"] for m in r},
    )
    assert all(m.key == m.body["payload"]["key"] for m in commands)
    replies = read_topics(["payment_events"], lambda r: any(m.body["type"] == "payment.void.succeeded" for m in r))
    by_command = {m.body["causation_id"]: m for m in replies if m.body["type"].endswith(".succeeded")}
    assert {m.body["payload"]["command_id"] for m in commands} <= set(by_command)
    assert "payment.captured" in {m.body["type"] for m in replies}  # domain events from the payments process
    assert payments.process.poll() is None


def test_a_relay_that_loses_its_lock_stops_sending_even_with_a_backlog(app_env, settings):
    topic = topic_for("order_events")
    OutboxMessage.objects.bulk_create(
        [
            OutboxMessage(
                topic=topic,
                aggregate_type="order",
                aggregate_id=str(uuid.uuid4()),
                type="test.backlog",
                payload={"n": n},
                correlation_id=uuid.uuid4(),
            )
            for n in range(20_000)
        ],
        batch_size=5_000,
    )
    relay = Relay(batch_size=50, poll_interval=0.2)
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    wait_until(lambda: relay.sent_total > 0, what="the relay to send")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = %s AND granted", [LOCK_KEY & 0xFFFFFFFF]
        )
        cursor.execute("SELECT pg_terminate_backend(%s)", [cursor.fetchone()[0]])
        wait_until(lambda: _try_lock(cursor), what="this test to take the relay lock")
        taken_at = relay.sent_total
        wait_until(lambda: relay.troubled, what="the old leader to notice")
        assert relay.sent_total - taken_at <= relay.batch_size  # at most the batch in flight
        cursor.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
    resumed_from = relay.sent_total
    wait_until(lambda: relay.sent_total > resumed_from, what="the relay to take over again")
    relay.stop.set()
    thread.join(timeout=30)


def _try_lock(cursor) -> bool:
    cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
    return cursor.fetchone()[0]
