"""The relay's batch against real PostgreSQL, with a producer that stands in for Kafka: what it
sends for a row, and which rows it marks sent when some are not acknowledged."""

import json
import threading
import time
import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from kafka.errors import IllegalStateError, KafkaError, KafkaTimeoutError
from kafka.partitioner import DefaultPartitioner

from saga.core.ids import bound
from saga.messaging import caused_by, publish
from saga.messaging.outbox import envelope
from saga.messaging.relay import KeyPartitioner, Relay, _headers
from saga.models import OutboxMessage
from saga.tests.holding import held_uncommitted


class Sent:
    """A send's future, done: acknowledged or not."""

    is_done = True

    def __init__(self, ok: bool):
        self.ok = ok
        self.exception = None if ok else KafkaTimeoutError("not acknowledged")

    def succeeded(self) -> bool:
        return self.ok

    def failed(self) -> bool:
        return not self.ok

    def get(self, timeout=None):
        if self.exception:
            raise self.exception

    def add_errback(self, errback):
        if self.exception:
            errback(self.exception)
        return self


class Sender:
    """What the relay stops of a producer when a send fails."""

    halted = False

    def force_close(self):
        self.halted = True


class FakeProducer:
    """Records what is sent; the sends from `fail_from` on are not acknowledged."""

    def __init__(self, fail_from: int | None = None, on_flush=None, on_send=None):
        self.fail_from = fail_from
        self.on_flush = on_flush
        self.on_send = on_send
        self.sent: list[dict] = []
        self._sender = Sender()

    def send(self, topic, *, key, value, headers):
        self.sent.append({"topic": topic, "key": key, "value": value, "headers": headers})
        if self.on_send:
            self.on_send(len(self.sent))
        return Sent(self.fail_from is None or len(self.sent) <= self.fail_from)

    def flush(self, timeout=None):
        if self.on_flush:
            self.on_flush()

    def close(self, timeout=None):
        pass


class Cluster:
    """What a partitioner reads of kafka-python's ClusterMetadata."""

    def __init__(self, partitions: dict[str, int]):
        self.partitions = {topic: set(range(n)) for topic, n in partitions.items()}

    def topics(self):
        return set(self.partitions)

    def partitions_for_topic(self, topic):
        return self.partitions.get(topic)

    available_partitions_for_topic = partitions_for_topic


def relay_with(producer: FakeProducer, batch_size: int = 100) -> Relay:
    relay = Relay(batch_size=batch_size)
    relay.producer = producer  # type: ignore[assignment]
    return relay


def unsent() -> list[int]:
    return list(OutboxMessage.objects.filter(sent_at__isnull=True).values_list("position", flat=True))


def test_what_is_sent_for_a_row_is_its_envelope_key_and_headers(db):
    saga_id, command_id = uuid.uuid4(), uuid.uuid4()
    with caused_by(saga_id, command_id):
        caused = publish(type="toy.reserved", key="order-1", payload={"order_id": "1", "lines": [{"n": 1.5}]})
    alone = publish(type="toy.shipped", key=uuid.uuid4(), payload={"text": 'quote " backslash \\ é ☃', "none": None})
    with bound(request_id=uuid.uuid4()):
        requested = publish(type="toy.shipped", key=uuid.uuid4(), payload={})
    OutboxMessage.objects.filter(pk=alone.pk).update(created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))  # no µs
    producer = FakeProducer()
    assert relay_with(producer).relay_batch() == 3
    rows = OutboxMessage.objects.order_by("position")
    assert [s["key"] for s in producer.sent] == [row.aggregate_id.encode() for row in rows]
    assert [s["topic"] for s in producer.sent] == [row.topic for row in rows]
    assert [json.loads(s["value"]) for s in producer.sent] == [envelope(row) for row in rows]
    assert [s["headers"] for s in producer.sent] == [_headers(row) for row in rows]
    assert dict(producer.sent[2]["headers"])["request_id"] == str(requested.request_id).encode()
    assert json.loads(producer.sent[0]["value"])["causation_id"] == str(command_id) == str(caused.causation_id)


def test_only_the_acknowledged_prefix_is_marked_sent(db):
    messages = [publish(type="toy.reserved", key=uuid.uuid4(), payload={"n": n}) for n in range(10)]
    relay = relay_with(FakeProducer(fail_from=4))
    with pytest.raises(KafkaTimeoutError):
        relay.relay_batch()
    assert relay.sent_total == 4
    assert unsent() == [m.position for m in messages[4:]]
    retry = FakeProducer()
    relay.producer = retry  # type: ignore[assignment]
    assert relay.relay_batch() == 6
    assert [json.loads(s["value"])["payload"]["n"] for s in retry.sent] == [4, 5, 6, 7, 8, 9]  # in order, from the gap
    assert unsent() == []


def test_nothing_acknowledged_marks_nothing(db):
    publish(type="toy.reserved", key=uuid.uuid4(), payload={})
    relay = relay_with(FakeProducer(fail_from=0))
    with pytest.raises(KafkaTimeoutError):
        relay.relay_batch()
    assert relay.sent_total == 0 and len(unsent()) == 1


def test_a_batch_is_the_horizon_one_read_and_one_update_in_position_order(db):
    messages = [publish(type="toy.reserved", key=uuid.uuid4(), payload={"n": n}) for n in range(7)]
    producer = FakeProducer()
    relay = relay_with(producer, batch_size=5)
    with CaptureQueriesContext(connection) as queries:
        assert relay.relay_batch() == 5
    assert len(queries) == 3  # the horizon's look, the batch, its update
    assert [json.loads(s["value"])["id"] for s in producer.sent] == [str(m.id) for m in messages[:5]]
    assert unsent() == [m.position for m in messages[5:]]
    assert relay.relay_batch() == 2 and relay.relay_batch() == 0


def test_a_row_committed_while_a_batch_is_in_flight_is_not_marked_sent(db):
    """Marking is by the positions sent, not a range: a row that appears in the middle meanwhile
    (a transaction that took its position earlier and committed late) stays unsent."""
    first = publish(type="toy.reserved", key=uuid.uuid4(), payload={})
    late = publish(type="toy.reserved", key=uuid.uuid4(), payload={})
    last = publish(type="toy.reserved", key=uuid.uuid4(), payload={})
    with connection.cursor() as cursor:  # as if `late` were not yet committed when the relay read
        cursor.execute("UPDATE saga_outboxmessage SET sent_at = now() WHERE position = %s", [late.position])

    def late_commit():
        with connection.cursor() as cursor:
            cursor.execute("UPDATE saga_outboxmessage SET sent_at = NULL WHERE position = %s", [late.position])

    producer = FakeProducer(on_flush=late_commit)
    assert relay_with(producer).relay_batch() == 2
    assert [json.loads(s["value"])["id"] for s in producer.sent] == [str(first.id), str(last.id)]
    assert unsent() == [late.position]


@pytest.mark.parametrize("partitions", [1, 3, 4, 12])
def test_the_key_partitioner_agrees_with_kafka_pythons_default(partitions):
    cluster = Cluster({"t": partitions})
    keys = [str(uuid.uuid4()).encode() for _ in range(500)] + [b"", b"a", "é".encode()]
    ours, default = KeyPartitioner(), DefaultPartitioner()
    assert [ours.partition("t", k, k, None, None, cluster) for k in keys * 2] == [
        default.partition("t", k, k, None, None, cluster) for k in keys * 2
    ]


def database_sessions() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        return cursor.fetchone()[0]


def sessions_drop_to(count: int, timeout: float = 10) -> bool:
    """Whether the database's sessions are down to `count` within `timeout` (a closed connection's
    server process ends a moment after the client closed it)."""
    deadline = time.monotonic() + timeout
    while database_sessions() > count and time.monotonic() < deadline:
        time.sleep(0.05)
    return database_sessions() == count


def sent_numbers(producer: FakeProducer) -> list[int]:
    return [json.loads(s["value"])["payload"]["n"] for s in producer.sent]


# A backlog's batches are marked by a thread with a connection of its own: the rows must be committed.
backlog = pytest.mark.django_db(transaction=True)


@backlog
def test_a_backlog_goes_batch_after_batch_in_order():
    messages = [publish(type="toy.reserved", key=uuid.uuid4(), payload={"n": n}) for n in range(23)]
    producer = FakeProducer()
    relay = relay_with(producer, batch_size=5)
    checks = []
    sessions = database_sessions()
    assert relay.relay_backlog(check=lambda: checks.append(len(producer.sent))) == 23
    assert sessions_drop_to(sessions)  # the marking thread's connection is closed
    assert sent_numbers(producer) == list(range(23))
    assert [json.loads(s["value"])["id"] for s in producer.sent] == [str(m.id) for m in messages]
    assert unsent() == [] and relay.sent_total == 23
    assert checks == [0, 5, 10, 15, 20]  # before each batch


@backlog
def test_a_failure_in_a_backlog_marks_only_what_precedes_it():
    messages = [publish(type="toy.reserved", key=uuid.uuid4(), payload={"n": n}) for n in range(15)]
    relay = relay_with(FakeProducer(fail_from=7), batch_size=5)
    with pytest.raises(KafkaTimeoutError):
        relay.relay_backlog()
    assert relay.sent_total == 7  # the first batch and two of the second; the third was in flight
    assert unsent() == [m.position for m in messages[7:]]
    retry = FakeProducer()
    relay.producer = retry  # type: ignore[assignment]
    assert relay.relay_backlog() == 8
    assert sent_numbers(retry) == list(range(7, 15))


@backlog
def test_a_relay_that_fails_its_check_leaves_the_batch_in_flight_unsent():
    for n in range(30):
        publish(type="toy.reserved", key=uuid.uuid4(), payload={"n": n})
    producer = FakeProducer()
    relay = relay_with(producer, batch_size=5)
    checks = iter([None, None, None])

    def check():
        if next(checks, "lost") == "lost":
            raise RuntimeError("lock lost")

    with pytest.raises(RuntimeError):
        relay.relay_backlog(check=check)
    assert len(producer.sent) == 15 and relay.sent_total == 10  # the third batch is in flight, not marked
    assert len(unsent()) == 20


@backlog
def test_a_row_that_commits_late_still_goes_before_the_later_rows_of_its_key():
    """Its position is taken at INSERT: rows above it wait until its transaction ends."""
    key = uuid.uuid4()
    publish(type="toy.reserved", key=key, payload={"n": 0})
    producer = FakeProducer()
    relay = relay_with(producer, batch_size=2)
    assert relay.relay_backlog() == 1
    with held_uncommitted(type="toy.reserved", key=key, payload={"n": 1}):
        publish(type="toy.reserved", key=key, payload={"n": 2})  # committed first
        publish(type="toy.reserved", key=uuid.uuid4(), payload={"n": 3})
        assert relay.relay_backlog() == 0 and relay.horizon.waiting
    assert relay.relay_backlog() == 3
    assert sent_numbers(producer) == [0, 1, 2, 3]
    assert unsent() == [] and not relay.horizon.waiting


@backlog
def test_a_row_rolled_back_holds_nothing_back():
    publish(type="toy.reserved", key=uuid.uuid4(), payload={"n": 0})
    with transaction.atomic():
        publish(type="toy.reserved", key=uuid.uuid4(), payload={"n": 1})
        transaction.set_rollback(True)
    publish(type="toy.reserved", key=uuid.uuid4(), payload={"n": 2})
    producer = FakeProducer()
    assert relay_with(producer).relay_backlog() == 2
    assert sent_numbers(producer) == [0, 2]


class Pending:
    """A send's future, settled when the producer delivers it (awaited, flushed or closed)."""

    def __init__(self, producer: "DeliveringProducer", index: int):
        self.producer, self.index = producer, index
        self.is_done = False
        self.exception: Exception | None = None
        self.errbacks: list = []

    def succeeded(self) -> bool:
        return self.is_done and self.exception is None

    def failed(self) -> bool:
        return self.is_done and self.exception is not None

    def get(self, timeout=None):
        self.producer.deliver(upto=self.index)
        if self.exception:
            raise self.exception

    def add_errback(self, errback):
        self.errbacks.append(errback)
        return self


class DeliveringProducer:
    """Delivers in order when awaited; like kafka-python after a failed batch (it bumps its epoch)
    it goes on with the next records, unless halted: then it fails what it still holds and refuses
    more, as kafka-python's sender does once force-closed."""

    def __init__(self, fail: set[int]):
        self.fail = fail  # the payload numbers that fail
        self.records: list[tuple[int, Pending]] = []
        self.delivered: list[int] = []
        self.lock = threading.RLock()
        self._sender = Sender()

    def send(self, topic, *, key, value, headers):
        with self.lock:
            if self._sender.halted:
                raise IllegalStateError("RecordAccumulator is closed")
            future = Pending(self, len(self.records))
            self.records.append((json.loads(value)["payload"]["n"], future))
            return future

    def deliver(self, upto: int | None = None):
        with self.lock:
            for n, future in self.records[: None if upto is None else upto + 1]:
                if future.is_done:
                    continue
                future.is_done = True
                if self._sender.halted or n in self.fail:
                    future.exception = KafkaTimeoutError(f"{n} not delivered")
                    for errback in future.errbacks:
                        errback(future.exception)
                else:
                    self.delivered.append(n)

    def flush(self, timeout=None):
        self.deliver()

    def close(self, timeout=None):
        self.deliver()


@backlog
def test_a_failed_send_lets_no_later_row_of_its_key_through_in_that_batch_or_the_next():
    key = uuid.uuid4()
    for n in range(6):  # batches of two: [0, K1] [2, K3] [4, K5]
        publish(type="toy.reserved", key=key if n % 2 else uuid.uuid4(), payload={"n": n})
    producer = DeliveringProducer(fail={1})
    relay = relay_with(producer, batch_size=2)  # type: ignore[arg-type]
    with pytest.raises(KafkaError):  # K1 failed while [2, K3] was being handed over
        relay.relay_backlog()
    relay.close()  # as the relay does after a failure
    assert producer.delivered == [0] and producer._sender.halted
    retry = DeliveringProducer(fail=set())
    relay.producer = retry  # type: ignore[assignment]
    assert relay.relay_backlog() == 5
    assert retry.delivered == [1, 2, 3, 4, 5]
    assert unsent() == []


@backlog
def test_a_backlog_stops_when_asked_once_the_batch_in_flight_is_marked():
    for n in range(30):
        publish(type="toy.reserved", key=uuid.uuid4(), payload={"n": n})
    relay = relay_with(FakeProducer(on_send=lambda count: count == 7 and relay.stop.set()), batch_size=5)
    assert relay.relay_backlog() == 10  # the second batch was being sent when asked
    assert len(unsent()) == 20
