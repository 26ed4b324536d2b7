"""One key's messages reach Kafka in the order of their outbox positions, even when the earlier
one commits last: the real relay, broker and PostgreSQL."""

import uuid

from saga.messaging import publish
from saga.messaging.relay import Relay
from saga.tests.holding import held_uncommitted

from .kafka import read_topics


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
