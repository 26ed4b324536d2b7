"""One key's messages reach Kafka in the order of their outbox positions, even when the earlier
one commits last: the real relay, broker and PostgreSQL."""

import uuid

import pytest
from kafka import KafkaProducer
from kafka.errors import IllegalStateError, KafkaError

from saga.messaging import publish
from saga.messaging.relay import Relay, _halt_on_failure
from saga.tests.holding import held_uncommitted
from tools.procs import ROOT

from .kafka import OwnBroker, read_topics


def test_a_row_that_commits_late_reaches_kafka_before_a_later_row_of_its_key(app_env):
    key = str(uuid.uuid4())
    relay = Relay()
    try:
        with held_uncommitted(type="order.created", key=key, payload={"seq": 1, "order_id": key}):
            publish(type="order.created", key=key, payload={"seq": 2, "order_id": key})  # committed first
            relay.relay_backlog()  # while the first is still open
        relay.relay_backlog()
    finally:
        relay.close()
    received = read_topics(["order_events"], lambda r: len([m for m in r if m.key == key]) >= 2)
    assert [m.body["payload"]["seq"] for m in sorted(received, key=lambda m: m.offset) if m.key == key] == [1, 2]


def test_the_first_failed_send_halts_kafka_pythons_producer_before_it_sends_more():
    """What the relay relies on, on the real client: the errback stops it for good (a private
    attribute of kafka-python's, so an upgrade that moves it fails here)."""
    broker = OwnBroker(ROOT / ".devstack" / f"broker-{uuid.uuid4().hex[:6]}")
    producer = KafkaProducer(
        bootstrap_servers=broker.address,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        request_timeout_ms=1000,
        delivery_timeout_ms=1500,
        max_block_ms=5000,
    )
    try:
        producer.send("halting", key=b"k", value=b"0").get(30)  # connected, the topic known
        broker.freeze()
        first = producer.send("halting", key=b"k", value=b"1").add_errback(_halt_on_failure(producer))
        with pytest.raises(KafkaError):
            first.get(30)
        broker.thaw()
        with pytest.raises(IllegalStateError):
            producer.send("halting", key=b"k", value=b"2")
    finally:
        producer.close(timeout=0)
        broker.stop()
