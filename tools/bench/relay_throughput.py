"""The outbox relay's throughput and lag, against the broker's own ceiling.

    make bench-relay                                  # embedded services, 20,000 messages
    python -m tools.bench.relay_throughput 50000            # throughput: a backlog of N rows relayed
    python -m tools.bench.relay_throughput --lag 2000 20    # lag: 2,000 msg/s published for 20 s
    python -m tools.bench.relay_throughput --ceiling 50000  # a bare producer, same settings, no database

Each prints one line per figure. Importable without side effects: `measure_throughput(count)`,
`measure_lag(rate, seconds)` and `measure_ceiling(count)` set Django up when they run.
Uses a topic of its own (bench_relay) and deletes its rows afterwards.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
import uuid

from tools import procs

TOPIC = "bench_relay"
PADDING = "x" * 200  # about 300-byte messages, as in DESIGN.md
KEYS = 500  # distinct Kafka keys (order ids) in a run


def _setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
    import django
    from django.apps import apps

    if not apps.ready:
        django.setup()
    from django.conf import settings

    from saga.messaging import messages_declare
    from saga.messaging.relay import ensure_topics

    messages_declare("bench", {"bench.ping": "order_id, padding"})  # the same again is allowed
    settings.KAFKA_TOPICS = {**settings.KAFKA_TOPICS, "bench_events": TOPIC}
    ensure_topics(settings.KAFKA_BOOTSTRAP_SERVERS)


def _publish(keys: list[uuid.UUID], count: int, start: int = 0) -> None:
    from saga.messaging import publish

    for n in range(start, start + count):
        publish(
            type="bench.ping",
            key=keys[n % len(keys)],
            payload={"order_id": str(keys[n % len(keys)]), "padding": PADDING},
        )


def _forget() -> None:
    from saga.models import OutboxMessage

    OutboxMessage.objects.filter(type="bench.ping").delete()


def crc_implementation() -> str:
    """kafka-python checksums every record batch (CRC-32C): in C with the crc32c package, else in Python."""
    from kafka.record import util

    return "crc32c in C" if getattr(util, "crc32c_c", None) is not None else "crc32c in pure Python"


def measure_throughput(count: int, batch_size: int | None = None) -> float:
    """Messages per second to relay a backlog of `count` rows (to the broker's acknowledgements and
    the rows marked sent)."""
    return _throughput(count, batch_size)[0]


def _throughput(count: int, batch_size: int | None = None) -> tuple[float, float]:
    """Messages per second, and the relay process's CPU time per message in µs (all its threads:
    a steadier figure than the rate on a shared machine)."""
    _setup()
    from django.db import transaction

    from saga.messaging.relay import Relay

    keys = [uuid.uuid4() for _ in range(KEYS)]
    relay = Relay() if batch_size is None else Relay(batch_size=batch_size)
    try:
        _publish(keys, 1)
        while relay.relay_batch():  # connect, and send what was waiting, before the clock starts
            pass
        with transaction.atomic():
            _publish(keys, count)
        started, cpu = time.perf_counter(), time.process_time()
        relay.relay_backlog()  # as relay_outbox does: one batch read while the one before is acknowledged
        elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    finally:
        relay.close()
        _forget()
    return count / elapsed, cpu / count * 1e6


def _steady_publisher(rate: int, seconds: float) -> None:
    """In a process of its own (as the web and worker processes are): `rate` messages a second,
    in transactions of a hundredth of a second's worth. The rows are what `publish` writes, but
    inserted together (one process calling `publish` row by row manages under 1,000 a second)."""
    _setup()
    from django.db import connection

    from saga.messaging import topic_for
    from saga.models import OutboxMessage

    keys = [str(uuid.uuid4()) for _ in range(KEYS)]
    topic = topic_for("bench_events")
    tick = 0.01
    per_tick = max(1, round(rate * tick))
    sys.stdin.readline()  # the go
    started = time.monotonic()
    sent = 0
    while (now := time.monotonic()) < started + seconds:
        count = min(per_tick, int((now - started) * rate) + per_tick - sent)
        if count > 0:
            OutboxMessage.objects.bulk_create(  # one INSERT, its own transaction
                [
                    OutboxMessage(
                        topic=topic,
                        aggregate_type="bench",
                        aggregate_id=keys[n % KEYS],
                        type="bench.ping",
                        payload={"order_id": keys[n % KEYS], "padding": PADDING},
                        correlation_id=uuid.uuid4(),
                    )
                    for n in range(sent, sent + count)
                ]
            )
            sent += count
        time.sleep(max(0.0, started + sent / rate - time.monotonic()))
    connection.close()


def measure_lag(rate: int, seconds: float) -> tuple[float, float]:
    """p50 and p99 (ms) from a message's created_at to its sent_at (set once the broker acknowledged
    it), while another process publishes `rate` messages a second for `seconds` and the relay runs
    as `relay_outbox` does (lock, LISTEN/NOTIFY)."""
    p50, p99, _ = _lag(rate, seconds)
    return p50, p99


def _lag(rate: int, seconds: float) -> tuple[float, float, float]:
    """measure_lag's figures and the rate the publisher achieved (a busy machine may starve it)."""
    _setup()
    from django.db import connection

    from saga.messaging.relay import Relay
    from saga.models import OutboxMessage

    _forget()
    relay = Relay(poll_interval=1.0)
    thread = threading.Thread(target=relay.run, daemon=True)
    publisher = subprocess.Popen(  # a process of its own, set up while the relay starts
        [sys.executable, "-m", "tools.bench.relay_throughput", "--publisher", str(rate), str(seconds)],
        stdin=subprocess.PIPE,
        text=True,
        cwd=procs.ROOT,
    )
    thread.start()
    try:
        _publish([uuid.uuid4()], 1)
        deadline = time.monotonic() + 30
        while relay.sent_total == 0 and time.monotonic() < deadline:  # active and connected
            time.sleep(0.05)
        if relay.sent_total == 0:
            raise RuntimeError("the relay sent nothing within 30 s (another relay holding the lock?)")
        with connection.cursor() as cursor:
            cursor.execute("SELECT max(position) FROM saga_outboxmessage")
            (before,) = cursor.fetchone()
        assert publisher.stdin is not None
        publisher.stdin.write("go\n")
        publisher.stdin.close()
        publisher.wait(seconds + 60)
        deadline = time.monotonic() + 60
        while OutboxMessage.objects.filter(type="bench.ping", sent_at__isnull=True).exists():
            if time.monotonic() > deadline:
                raise RuntimeError("the relay did not catch up within 60 s")
            time.sleep(0.05)
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY lag),
                       percentile_cont(0.99) WITHIN GROUP (ORDER BY lag), count(*)
                FROM (SELECT extract(epoch FROM sent_at - created_at) * 1000 AS lag
                      FROM saga_outboxmessage WHERE type = 'bench.ping' AND position > %s) AS m
                """,
                [before],
            )
            p50, p99, n = cursor.fetchone()
        if not n:
            raise RuntimeError("the publisher wrote nothing")
    finally:
        relay.stop.set()
        thread.join(30)
        if publisher.poll() is None:
            publisher.kill()
            publisher.wait()
        _forget()
    return float(p50), float(p99), n / seconds


def measure_ceiling(count: int) -> float:
    """Messages per second of a bare kafka-python producer with the relay's settings, to the same
    broker, no database: what the relay could at best do."""
    _setup()
    from django.conf import settings

    from saga.messaging.relay import producer_for

    producer = producer_for(settings.KAFKA_BOOTSTRAP_SERVERS)
    keys = [str(uuid.uuid4()).encode() for _ in range(KEYS)]
    value = json.dumps(
        {
            "id": str(uuid.uuid4()),
            "type": "bench.ping",
            "correlation_id": str(uuid.uuid4()),
            "causation_id": None,
            "timestamp": "2026-01-01T00:00:00.000000Z",
            "schema_version": 1,
            "payload": {"order_id": str(uuid.uuid4()), "padding": PADDING},
        },
        separators=(",", ":"),
    ).encode()
    headers = [("type", b"bench.ping"), ("correlation_id", str(uuid.uuid4()).encode())]
    try:
        producer.send(TOPIC, key=keys[0], value=value, headers=headers).get(10)
        started = time.perf_counter()
        futures = [producer.send(TOPIC, key=keys[n % KEYS], value=value, headers=headers) for n in range(count)]
        producer.flush(timeout=60)
        elapsed = time.perf_counter() - started
        if not all(future.succeeded() for future in futures):
            raise RuntimeError("the broker did not acknowledge every message")
    finally:
        producer.close(timeout=2)
    return count / elapsed


def main(count: int, batch_size: int | None = None) -> None:
    rate, cpu = _throughput(count, batch_size)
    print(
        f"relay: {count} messages at {rate:,.0f} messages/s, {cpu:.0f} µs CPU each "
        f"(acks=all, idempotent producer, {crc_implementation()})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("count", nargs="?", type=int, default=20_000, help="messages to relay (default 20,000)")
    parser.add_argument("--lag", nargs=2, type=float, metavar=("RATE", "SECONDS"), help="measure lag instead")
    parser.add_argument("--ceiling", action="store_true", help="a bare producer to the broker instead")
    parser.add_argument("--batch-size", type=int, help="the relay's batch size (default: the relay's own)")
    parser.add_argument("--publisher", nargs=2, type=float, help=argparse.SUPPRESS)  # --lag's other process
    args = parser.parse_args()
    if args.publisher:
        _steady_publisher(int(args.publisher[0]), args.publisher[1])
    elif args.lag:
        lag_rate, seconds = int(args.lag[0]), args.lag[1]
        p50, p99, achieved = _lag(lag_rate, seconds)
        print(
            f"relay lag at {lag_rate:,} messages/s for {seconds:g} s: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
            f"({achieved:,.0f} messages/s published, {crc_implementation()})"
        )
    elif args.ceiling:
        print(
            f"producer ceiling: {args.count} messages at {measure_ceiling(args.count):,.0f} messages/s "
            f"(bare kafka-python, the relay's settings, {crc_implementation()})"
        )
    else:
        main(args.count, args.batch_size)
