"""The outbox relay: sends committed outbox rows to Kafka, in order, at least once.

One relay is active at a time: it holds a PostgreSQL advisory lock on a connection of its own,
which PostgreSQL releases the moment that process dies, so a standby takes over within a poll
interval. The active relay is woken by LISTEN/NOTIFY (a trigger on the outbox) and polls as a
fallback. A batch is produced with acks=all, the acknowledgements are awaited, and only the
acknowledged prefix is marked sent; a crash in between re-sends the same ids (consumers
deduplicate by id). When Kafka is unreachable the rows wait, the relay backs off, and it says
so once per change of state.

Order per key: a row is sent only once no row with a lower position can still appear (the
horizon, below), in position order, and nothing is handed to Kafka after a row that failed.
"""

import json
import logging
import select
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from django.db import DEFAULT_DB_ALIAS, connection
from django.utils import timezone
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError
from kafka.partitioner import DefaultPartitioner
from kafka.partitioner.default import murmur2
from kafka.producer.future import FutureRecordMetadata

from saga.core.conf import saga_settings
from saga.core.counters import RELAY_SENT

from .catalog import catalog, topic_for
from .horizon import Horizon
from .models import OutboxMessage
from .outbox import SCHEMA_VERSION

if TYPE_CHECKING:
    import psycopg2.extensions  # the connection that holds the lock and listens

log = logging.getLogger(__name__)

SEND_TIMEOUT = 20.0  # seconds to wait for a batch's acknowledgements
HORIZON_RECHECK = 0.02  # seconds between looks at the horizon while rows wait above it
LOCK_KEY = 0x5A6A_0B0C  # the relay's advisory lock, one per database
CHANNEL = "saga_outbox"


# What the relay reads of an unsent row, as text where text is what Kafka gets (no UUID objects,
# no dict parsed from jsonb only to be dumped again): the first unsent rows above `after` and at or
# below the horizon.
_UNSENT = f"""
    SELECT position, topic, aggregate_id, type, id::text, correlation_id::text, causation_id::text,
           request_id::text, created_at, payload::text
    FROM {OutboxMessage._meta.db_table}
    WHERE sent_at IS NULL AND position > %s AND position <= %s
    ORDER BY position
    LIMIT %s
"""
# In the partial index outbox_unsent (position WHERE sent_at IS NULL) the batch is the first rows,
# read in order. But a backlog grows faster than the statistics: planning for the few unsent rows
# it last counted, PostgreSQL would fetch every unsent row and sort them (on disk, for a large
# backlog) for each batch. Not sorting keeps it to the index, whatever the statistics say; SET
# LOCAL lasts for this statement only (statements sent together run as one transaction).
_FETCH_UNSENT = "SET LOCAL enable_sort = off; " + _UNSENT
_MARK_SENT = f"UPDATE {OutboxMessage._meta.db_table} SET sent_at = now() WHERE position = ANY(%s)"


class KeyPartitioner(DefaultPartitioner):
    """kafka-python's default partitioner (murmur2 of the key, as the Java client), remembering the
    hash of recent keys: a saga's messages share the order id, and the pure-Python murmur2 was a
    tenth of the relay's time. Same key, same partition as before."""

    def partition(
        self, topic: str, key: Any, serialized_key: Any, value: Any, serialized_value: Any, cluster: Any
    ) -> int:
        if serialized_key is None:
            return super().partition(topic, key, serialized_key, value, serialized_value, cluster)
        partitions = cluster.partitions_for_topic(topic)
        if not partitions:
            raise ValueError(f"Topic {topic} not found in ClusterMetadata")
        return sorted(partitions)[_murmur2(bytes(serialized_key)) % len(partitions)]


@lru_cache(maxsize=65_536)
def _murmur2(key: bytes) -> int:
    return murmur2(key) & 0x7FFFFFFF


def producer_for(bootstrap_servers: str) -> KafkaProducer:
    return KafkaProducer(
        bootstrap_servers=bootstrap_servers,
        acks="all",
        enable_idempotence=True,  # keeps each partition's order through retries (max 5 requests in flight)
        partitioner=KeyPartitioner(),  # type: ignore[arg-type]  # the stubs know only the old callable form
        linger_ms=5,
        batch_size=256 * 1024,
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
        batch_size: int = 2000,
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
        self.horizon = Horizon(OutboxMessage._meta.db_table)

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
        rows = self._unsent()
        if not rows:
            return 0
        futures = self._send(rows)
        self._producer().flush(timeout=SEND_TIMEOUT)
        return self._mark(rows, futures)

    def relay_backlog(self, check: Callable[[], None] = lambda: None) -> int:
        """Relay until fewer than a batch are waiting (or `stop` is set); return how many were marked sent.

        While a thread of the pass (with a database connection of its own) waits for one batch's
        acknowledgements and marks it, the next batch is read and handed to the producer, so
        neither the database nor the producer waits for the other. Batches are marked in order,
        each only once all before it were acknowledged, and only its acknowledged prefix: the
        idempotent producer keeps each partition in order across batches as within one. `check`
        runs before each batch (the lock's connection) and a batch is marked only after a check
        that followed its sending: when one raises, the batch in flight stays unsent.
        """
        marked = 0
        marker: ThreadPoolExecutor | None = None
        in_flight: tuple[list[tuple[Any, ...]], list[FutureRecordMetadata]] | None = None
        try:
            while True:
                check()
                marking = None
                if in_flight is not None:
                    if marker is None:
                        marker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relay-mark")
                    marking = marker.submit(self._mark, *in_flight)
                # Past the batch in flight: every row below it was settled when that batch was read
                # (the horizon), so none can have appeared there since.
                # Asked to stop: no more, only the batch in flight is seen through.
                rows = [] if self.stop.is_set() else self._unsent(after=in_flight[0][-1][0] if in_flight else None)
                futures = self._send(rows)
                last = len(futures) < self.batch_size  # the pass's last batch, or one cut short by a refusal
                if last:  # no linger
                    self._producer().flush(timeout=SEND_TIMEOUT)
                if marking is not None:
                    marked += marking.result()  # raises if any of the batch before was not acknowledged
                if last:
                    return marked + self._mark(rows, futures)
                in_flight = rows, futures
        finally:
            if marker is not None:
                marker.submit(_close_connection)  # the thread's own connection
                marker.shutdown(wait=True)  # after any marking under way

    def _unsent(self, after: int | None = None) -> list[tuple[Any, ...]]:
        with connection.cursor() as cursor:
            if after is None or self.horizon.settled - after < self.batch_size:  # else a backlog's batch is below it
                self.horizon.advance(cursor)
            cursor.execute(_FETCH_UNSENT, [after or 0, self.horizon.settled, self.batch_size])
            return cursor.fetchall()

    def _send(self, rows: list[tuple[Any, ...]]) -> list[FutureRecordMetadata]:
        """Hand `rows` to the producer, which is halted by the first of them that fails; a refusal at
        once ends the batch there (fewer futures than rows)."""
        if not rows:
            return []
        producer = self._producer()
        halt = _halt_on_failure(producer)
        futures = []
        for row in rows:
            _, topic, key, kind, _, correlation_id, _, request_id, _, _ = row
            headers = _headers_of(kind, correlation_id, request_id)
            future = producer.send(topic, key=key.encode(), value=_value_of(row), headers=headers)
            futures.append(future.add_errback(halt))
            if future.failed():  # refused at once: nothing after it may go first
                break
        return futures

    def _mark(self, rows: list[tuple[Any, ...]], futures: list[FutureRecordMetadata]) -> int:
        """Mark sent the acknowledged prefix of `rows`, once each is acknowledged or failed (or
        timed out); raise the first failure."""
        _settle(futures, SEND_TIMEOUT)
        acknowledged = 0
        for future in futures:
            if not future.succeeded():
                break  # keep order: nothing after a failure is marked sent
            acknowledged += 1
        if acknowledged:
            with connection.cursor() as cursor:
                cursor.execute(_MARK_SENT, [[row[0] for row in rows[:acknowledged]]])
        self.sent_total += acknowledged
        for topic, count in Counter(row[1] for row in rows[:acknowledged]).items():
            RELAY_SENT.labels(topic=topic).inc(count)
        if acknowledged < len(rows):
            error = futures[acknowledged].exception if futures[acknowledged].is_done else None
            raise error or KafkaTimeoutError("a message was not acknowledged in time")
        return acknowledged

    def _relay_while_leader(self, listener: "psycopg2.extensions.connection") -> None:
        backoff = 0.5
        topics_ready = False
        while not self.stop.is_set():
            _check_alive(listener)  # the lock lives on that connection: stand down before sending more
            try:
                if not topics_ready:
                    ensure_topics(saga_settings.KAFKA_BOOTSTRAP_SERVERS)
                    topics_ready = True
                self.relay_backlog(check=lambda: _check_alive(listener))
            except KafkaError as error:
                self._kafka_state(down=True, error=error)
                self.close()  # a restarted broker forgets our producer id: start afresh
                self.stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff)
                continue
            self._kafka_state(down=False)
            backoff = 0.5
            # Fewer than a batch were left, or rows wait above the horizon for writers to end.
            _wait_for_notify(listener, HORIZON_RECHECK if self.horizon.waiting else self.poll_interval, self.stop)

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
        """Discard the producer: what it still holds is delivered within 2 s unless a send failed
        (then it was halted, and nothing after the failure is delivered)."""
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


def _halt_on_failure(producer: KafkaProducer) -> Callable[[Exception], None]:
    """An errback that stops `producer` for good at its first failed send, before it sends anything
    more. kafka-python goes on after a failed batch (it bumps its epoch and drains the next ones),
    so a later message of the same key could otherwise be written while the failed one is not: the
    relay resends from the failed row with a new producer instead. It runs on the producer's I/O
    thread, which then stops and fails what it still holds (`close` from that thread would first
    try to flush); what was already written is a prefix of each partition (idempotent producer:
    the broker refuses a batch whose predecessor it did not write)."""

    def halt(_error: Exception) -> None:
        # No public way to stop at once from its own thread (the stubs do not know the attribute).
        producer._sender.force_close()  # type: ignore[attr-defined]

    return halt


def _close_connection() -> None:
    """Close this thread's database connection (`connection.close`, looked up in another thread,
    would be that thread's)."""
    connection.close()


def _settle(futures: list[FutureRecordMetadata], timeout: float) -> None:
    """Wait until each future is done (acknowledged or failed), for `timeout` seconds at most."""
    deadline = time.monotonic() + timeout
    for future in futures:
        if not future.is_done:
            with suppress(Exception):  # failed or timed out: _mark reads which
                future.get(timeout=max(deadline - time.monotonic(), 0))


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


def _value_of(row: tuple[Any, ...]) -> bytes:
    """The envelope (outbox.envelope, as JSON) of a row read by _UNSENT, built as text: the payload
    is the stored JSON as PostgreSQL prints it, not parsed and dumped again."""
    _, _, _, kind, message_id, correlation_id, causation_id, _, created_at, payload = row
    causation = "null" if causation_id is None else f'"{causation_id}"'
    return (
        f'{{"id":"{message_id}","type":{_json_string(kind)},"correlation_id":"{correlation_id}",'
        f'"causation_id":{causation},"timestamp":"{_timestamp(created_at)}",'
        f'"schema_version":{SCHEMA_VERSION},"payload":{payload}}}'
    ).encode()


@lru_cache(maxsize=1024)
def _json_string(text: str) -> str:
    return json.dumps(text)


def _timestamp(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _headers(row: OutboxMessage) -> list[tuple[str, bytes]]:
    """The type, the saga (correlation id) and, when an HTTP request caused it, its request id."""
    return _headers_of(row.type, str(row.correlation_id), None if row.request_id is None else str(row.request_id))


def _headers_of(kind: str, correlation_id: str | None, request_id: str | None) -> list[tuple[str, bytes]]:
    headers = [("type", kind.encode()), ("correlation_id", str(correlation_id).encode())]
    if request_id is not None:
        headers.append(("request_id", request_id.encode()))
    return headers


def outbox_lag_seconds(using: str = DEFAULT_DB_ALIAS) -> float:
    """Age of the oldest message not yet sent (0 when all are sent), in the database `using`."""
    oldest = (
        OutboxMessage.objects.using(using)
        .filter(sent_at__isnull=True)
        .order_by("position")
        .values_list("created_at", flat=True)
        .first()
    )
    return max((timezone.now() - oldest).total_seconds(), 0.0) if oldest else 0.0
