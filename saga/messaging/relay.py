"""The outbox relay: sends committed outbox rows to Kafka, in order, at least once.

One relay is active at a time: it holds a PostgreSQL advisory lock on a connection of its own,
which PostgreSQL releases the moment that process dies, so a standby takes over within a poll
interval. The active relay is woken by LISTEN/NOTIFY (a trigger on the outbox) and polls as a
fallback. A batch is produced with acks=all, the acknowledgements are awaited, and only the
acknowledged prefix is marked sent; a crash in between re-sends the same ids (consumers
deduplicate by id). When Kafka is unreachable the rows wait, the relay backs off, and it says
so once per change of state.
"""

import json
import logging
import select
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import TYPE_CHECKING

from django.db import connection
from django.utils import timezone
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError

from ..conf import saga_settings
from ..observability.counters import RELAY_SENT
from .catalog import catalog, topic_for
from .models import OutboxMessage
from .outbox import envelope

if TYPE_CHECKING:
    import psycopg2.extensions  # the connection that holds the lock and listens

log = logging.getLogger(__name__)

LOCK_KEY = 0x5A6A_0B0C  # the relay's advisory lock, one per database
CHANNEL = "saga_outbox"


def producer_for(bootstrap_servers: str) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        batch_size=64 * 1024,
        request_timeout_ms=10_000,
        delivery_timeout_ms=15_000,
        max_block_ms=5_000,
        bootstrap_timeout_ms=5_000,
    )


def ensure_topics(bootstrap_servers: str) -> None:
    """Create the declared topics with the partition count we mean (auto-creation would pick its own)."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap_servers, bootstrap_timeout_ms=5_000, request_timeout_ms=10_000)
    try:
        existing = set(admin.list_topics())
        missing = [
            NewTopic(name, saga_settings.KAFKA_TOPIC_PARTITIONS, saga_settings.KAFKA_TOPIC_REPLICATION)
            for name in sorted({topic_for(role) for role in catalog.roles()} - existing)
        ]
        if missing:
            with suppress(TopicAlreadyExistsError):  # another process created them first
                admin.create_topics(missing)
    finally:
        admin.close()


class Relay:
    def __init__(
        self,
        *,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        max_backoff: float = 5.0,
        stop: threading.Event | None = None,
    ):
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.stop = stop or threading.Event()
        self.producer: KafkaProducer | None = None
        self.kafka_down = False
        self.troubled = False  # lost its database connection (or lock) and is retrying
        self.sent_total = 0

    def run(self) -> None:
        """Relay until `stop` is set: active while holding the lock, standby otherwise."""
        while not self.stop.is_set():
            try:
                with self._leadership() as listener:
                    self.troubled = False  # the database answered
                    if listener is None:
                        self.stop.wait(self.poll_interval)
                        continue
                    log.info("relay active")
                    self._relay_while_leader(listener)
            except Exception:  # e.g. a lost database connection: stand down, retry
                if not self.troubled:  # once per change of state, not per attempt
                    log.exception("relay stopped being active; retrying every %s s", self.poll_interval)
                self.troubled = True
                connection.close()
                self.stop.wait(self.poll_interval)
        self.close()
        connection.close()

    def relay_batch(self) -> int:
        """Send one batch of unsent rows; return how many were acknowledged and marked sent."""
        rows = list(OutboxMessage.objects.filter(sent_at__isnull=True).order_by("position")[: self.batch_size])
        if not rows:
            return 0
        producer = self._producer()
        futures = [
            producer.send(row.topic, key=row.aggregate_id.encode(), value=_value(row), headers=_headers(row))
            for row in rows
        ]
        producer.flush(timeout=20)
        acknowledged = []
        for row, future in zip(rows, futures, strict=True):
            if not future.succeeded():
                break  # keep order: nothing after a failure is marked sent
            acknowledged.append(row.position)
        OutboxMessage.objects.filter(position__in=acknowledged).update(sent_at=timezone.now())
        self.sent_total += len(acknowledged)
        for row in rows[: len(acknowledged)]:
            RELAY_SENT.labels(topic=row.topic).inc()
        if len(acknowledged) < len(rows):
            raise futures[len(acknowledged)].exception or KafkaError("a message was not acknowledged")
        return len(acknowledged)

    def _relay_while_leader(self, listener: "psycopg2.extensions.connection") -> None:
        backoff = 0.5
        topics_ready = False
        while not self.stop.is_set():
            _check_alive(listener)  # the lock lives on that connection: stand down before sending more
            try:
                if not topics_ready:
                    ensure_topics(saga_settings.KAFKA_BOOTSTRAP_SERVERS)
                    topics_ready = True
                sent = self.relay_batch()
            except KafkaError as error:
                self._kafka_state(down=True, error=error)
                self.close()  # a restarted broker forgets our producer id: start afresh
                self.stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            self._kafka_state(down=False)
            backoff = 0.5
            if sent < self.batch_size:
                _wait_for_notify(listener, self.poll_interval, self.stop)

    def _kafka_state(self, *, down: bool, error: Exception | None = None) -> None:
        if down and not self.kafka_down:
            log.warning("Kafka unavailable, keeping messages in the outbox: %s", error)
        elif not down and self.kafka_down:
            log.warning("Kafka reachable again, relaying the backlog")
        self.kafka_down = down

    def _producer(self) -> KafkaProducer:
        if self.producer is None:
            self.producer = producer_for(saga_settings.KAFKA_BOOTSTRAP_SERVERS)
        return self.producer

    def close(self) -> None:
        if self.producer is not None:
            try:
                self.producer.close(timeout=2)
            except Exception:  # it is being thrown away
                log.debug("closing the producer failed", exc_info=True)
            self.producer = None

    @contextmanager
    def _leadership(self) -> Iterator["psycopg2.extensions.connection | None"]:
        """A connection of our own holding the relay lock and listening, or None (standby)."""
        raw = connection.get_new_connection(connection.get_connection_params())
        raw.autocommit = True
        try:
            with raw.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_lock(%s)", [LOCK_KEY])
                if not cursor.fetchone()[0]:
                    yield None
                    return
                cursor.execute(f"LISTEN {CHANNEL}")
            yield raw
        finally:
            raw.close()


def _check_alive(listener: "psycopg2.extensions.connection") -> None:
    """A round trip on the lock's connection; raises if PostgreSQL dropped it (and the lock)."""
    with listener.cursor() as cursor:
        cursor.execute("SELECT 1")


def _wait_for_notify(listener: "psycopg2.extensions.connection", timeout: float, stop: threading.Event) -> None:
    deadline = time.monotonic() + timeout
    while not stop.is_set() and time.monotonic() < deadline:
        ready, _, _ = select.select([listener], [], [], min(0.2, max(deadline - time.monotonic(), 0)))
        listener.poll()  # raises if the connection (and so the lock) is gone
        if ready and listener.notifies:
            listener.notifies.clear()
            return


def _value(row: OutboxMessage) -> bytes:
    return json.dumps(envelope(row), separators=(",", ":")).encode()


def _headers(row: OutboxMessage) -> list[tuple[str, bytes]]:
    """The type, the saga (correlation id) and, when an HTTP request caused it, its request id."""
    headers = [("type", row.type.encode()), ("correlation_id", str(row.correlation_id).encode())]
    if row.request_id is not None:
        headers.append(("request_id", str(row.request_id).encode()))
    return headers


def outbox_lag_seconds() -> float:
    """Age of the oldest message not yet sent (0 when all are sent)."""
    oldest = (
        OutboxMessage.objects.filter(sent_at__isnull=True)
        .order_by("position")
        .values_list("created_at", flat=True)
        .first()
    )
    return max((timezone.now() - oldest).total_seconds(), 0.0) if oldest else 0.0
