"""Relay throughput: write N outbox messages, relay them to Kafka, print messages per second.

    make bench-relay                     # embedded services, 20,000 messages
    python -m bench.relay_throughput 50000

Uses a topic of its own (bench_relay) and deletes its rows afterwards.
"""

import os
import sys
import time
import uuid

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
django.setup()

from django.conf import settings  # noqa: E402
from django.db import transaction  # noqa: E402

from saga.messaging import messages_declare, publish  # noqa: E402
from saga.messaging.relay import Relay, ensure_topics  # noqa: E402
from saga.models import OutboxMessage  # noqa: E402


def main(count: int) -> None:
    messages_declare("bench", {"bench.ping": "order_id, padding"})
    settings.KAFKA_TOPICS = {**settings.KAFKA_TOPICS, "bench_events": "bench_relay"}
    ensure_topics(settings.KAFKA_BOOTSTRAP_SERVERS)
    keys = [uuid.uuid4() for _ in range(500)]
    payload = {"order_id": str(keys[0]), "padding": "x" * 200}  # about 300-byte messages, as in DESIGN.md
    relay = Relay(batch_size=1000)
    publish(type="bench.ping", key=keys[0], payload=payload)
    while relay.relay_batch():  # connect, and send what was waiting, before the clock starts
        pass
    with transaction.atomic():
        for n in range(count):
            publish(type="bench.ping", key=keys[n % len(keys)], payload=payload)
    started = time.perf_counter()
    while relay.relay_batch():
        pass
    elapsed = time.perf_counter() - started
    relay.close()
    OutboxMessage.objects.filter(type="bench.ping").delete()
    print(
        f"relay: {count} messages in {elapsed:.2f} s = {count / elapsed:,.0f} messages/s "
        "(batches of 1000, acks=all, idempotent producer)"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
