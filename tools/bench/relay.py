"""The outbox relay: messages per second from outbox rows to broker acknowledgements, and the lag
of rows written while the engine runs (sent_at - created_at, both stamped by the shop's clock)."""

from __future__ import annotations

import time
import uuid

from django.conf import settings
from django.db import transaction

from saga.messaging import messages_declare, publish
from saga.messaging.relay import Relay, ensure_topics
from saga.models import OutboxMessage

from .server import Observer

PING = "bench.ping"
BATCH = 2000  # the relay_outbox default


def throughput(count: int) -> float:
    """Write `count` messages of about 300 bytes (as DESIGN.md assumes) to a topic of their own,
    relay them with the shop's Relay in batches of BATCH (acks=all, idempotent producer); messages
    per second from the first send to the last acknowledged batch marked sent. The rows are deleted
    afterwards; whatever else was waiting in the outbox is sent before the clock starts."""
    messages_declare("bench", {PING: "order_id, padding"})
    settings.KAFKA_TOPICS = {**settings.KAFKA_TOPICS, "bench_events": f"bench_relay_{uuid.uuid4().hex[:8]}"}
    ensure_topics(settings.KAFKA_BOOTSTRAP_SERVERS)
    keys = [uuid.uuid4() for _ in range(500)]
    payload = {"order_id": str(keys[0]), "padding": "x" * 200}
    relay = Relay(batch_size=BATCH)
    try:
        publish(type=PING, key=keys[0], payload=payload)
        while relay.relay_batch():  # connect, and send what was waiting, before the clock starts
            pass
        with transaction.atomic():
            for n in range(count):
                publish(type=PING, key=keys[n % len(keys)], payload=payload)
        started = time.perf_counter()
        relay.relay_backlog()  # as relay_outbox does: the next batch read while one is acknowledged
        elapsed = time.perf_counter() - started
    finally:
        relay.close()
        OutboxMessage.objects.filter(type=PING).delete()
    return count / elapsed


def lag_ms(observer: Observer, since: float, until: float, timeout: float) -> tuple[float, float]:
    """p50 and p99 of sent_at - created_at of the rows written between `since` and `until` (wall
    clock), once the relay has sent them all (waited for, with a deadline)."""
    window = "created_at BETWEEN to_timestamp(%s) AND to_timestamp(%s)"
    deadline = time.monotonic() + timeout
    while observer.value(f"SELECT count(*) FROM saga_outboxmessage WHERE sent_at IS NULL AND {window}", [since, until]):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the relay did not send the engine's messages within {timeout:.0f} s")
        time.sleep(0.25)
    p50, p99 = observer.query(
        "SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP "
        "(ORDER BY extract(epoch FROM sent_at - created_at) * 1000) "
        f"FROM saga_outboxmessage WHERE {window}",
        [since, until],
    )[0][0]
    return float(p50), float(p99)
