"""The inbox: consume messages from Kafka and act on each one once.

Each message's id is recorded in `InboxMessage` in the same transaction as its effect, so a
redelivered message is skipped; offsets are committed only after that transaction. A message
that cannot be used (bad JSON, unknown type, missing fields) is parked in `DeadLetter` and the
consumer goes on with the next one.
"""

import builtins
import json
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from kafka import ConsumerRebalanceListener, KafkaConsumer
from kafka.errors import KafkaError

from saga.core.conf import saga_settings
from saga.core.counters import CONSUMED
from saga.core.ids import bound

from .messages import M, UnreadablePayload, message_from
from .models import DeadLetter, InboxMessage

log = logging.getLogger(__name__)


class MalformedMessage(ValueError):
    """A message that no retry can make usable."""


@dataclass(frozen=True)
class Envelope:
    id: UUID
    type: str
    correlation_id: UUID | None
    causation_id: UUID | None
    payload: dict[str, Any]
    topic: str

    def field(self, name: str) -> Any:
        try:
            return self.payload[name]
        except KeyError:
            raise MalformedMessage(f"{self.type} has no {name!r} in its payload") from None

    def message(self, cls: builtins.type[M]) -> M:
        """The payload as its declared class."""
        try:
            return message_from(cls, self.payload)
        except UnreadablePayload as error:
            raise MalformedMessage(str(error)) from error

    def uuid_field(self, name: str) -> UUID:
        try:
            return UUID(str(self.field(name)))
        except ValueError:
            raise MalformedMessage(f"{self.type}: {name} is not a UUID") from None


Handler = Callable[[Envelope], None]


class Handlers:
    """Message handlers by type, registered by the apps at start-up (AppConfig.ready)."""

    def __init__(self) -> None:
        self._by_type: dict[str, Handler] = {}

    def register(self, type: str, handler: Handler) -> None:
        self._by_type[type] = handler

    def copy(self) -> "Handlers":
        other = Handlers()
        other._by_type = dict(self._by_type)
        return other

    def knows(self, type: str) -> bool:
        return type in self._by_type

    def get(self, type: str) -> Handler:
        try:
            return self._by_type[type]
        except KeyError:
            raise MalformedMessage(f"no handler for messages of type {type!r}") from None


handlers = Handlers()


def parse(value: bytes | None, topic: str) -> Envelope:
    try:
        body = json.loads(value or b"")
        return Envelope(
            id=UUID(body["id"]),
            type=str(body["type"]),
            correlation_id=UUID(body["correlation_id"]) if body.get("correlation_id") else None,
            causation_id=UUID(body["causation_id"]) if body.get("causation_id") else None,
            payload=dict(body.get("payload") or {}),
            topic=topic,
        )
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
        raise MalformedMessage(f"not a message envelope: {type(error).__name__}: {error}") from error


def consume(
    topic: str,
    value: bytes | None,
    *,
    partition: int = 0,
    offset: int = 0,
    key: bytes | None = None,
    using: Handlers = handlers,
    lenient: bool = False,
    headers: Iterable[tuple[str, bytes | None]] = (),
) -> str:
    """Act on one message once. Returns "processed", "duplicate", "ignored" or "parked".
    `lenient`: the topic carries other messages too (a participant's events beside its replies),
    so a type without a handler is ignored rather than parked. Log lines meanwhile carry the
    request id of the message's `request_id` header."""
    with bound(request_id=_header(headers, "request_id")):
        outcome = _consume_or_park(topic, value, partition, offset, key, using, lenient)
    CONSUMED.labels(topic=topic, outcome=outcome).inc()
    return outcome


def _header(headers: Iterable[tuple[str, bytes | None]], name: str) -> str | None:
    raw = next((value for key, value in headers if key == name), None)
    try:
        return str(UUID(raw.decode())) if raw else None
    except ValueError:
        return None


def _consume_or_park(
    topic: str, value: bytes | None, partition: int, offset: int, key: bytes | None, using: Handlers, lenient: bool
) -> str:
    try:
        return _consume(topic, value, key, using, lenient)
    except MalformedMessage as error:
        DeadLetter.objects.create(
            topic=topic,
            partition=partition,
            offset=offset,
            key=_text(key),
            value=_text(value),
            error=_text(str(error).encode()),
        )
        log.warning("parked a message from %s[%s]@%s: %s", topic, partition, offset, error)
        return "parked"


def _consume(topic: str, value: bytes | None, key: bytes | None, using: Handlers, lenient: bool) -> str:
    message = parse(value, topic)
    if lenient and not using.knows(message.type):
        return "ignored"
    handler = using.get(message.type)
    with transaction.atomic():
        if not _first_sight(message, key):
            return "duplicate"
        _handle(handler, message)
    return "processed"


def redeliver(letter: DeadLetter, *, using: Handlers) -> str:
    """Consume a parked message again, as the consumer would: through the inbox, so a message
    whose id was already acted on is not acted on twice. Returns "processed" or "duplicate";
    raises MalformedMessage when it still cannot be used (the caller keeps the dead letter)."""
    return _consume(letter.topic, letter.value.encode(), letter.key.encode(), using, lenient=False)


def _handle(handler: Handler, message: Envelope) -> None:
    """A database failure is retried (the message comes again); any other failure of a handler
    means the message itself is unusable, and it is parked."""
    try:
        handler(message)
    except (MalformedMessage, OperationalError, InterfaceError):
        raise  # the database is away or the transaction lost a race: the message comes again
    except Exception as error:  # parked with its reason, never stops the consumer
        raise MalformedMessage(f"{message.type} could not be handled: {type(error).__name__}: {error}") from error


def _first_sight(message: Envelope, key: bytes | None) -> bool:
    _, created = InboxMessage.objects.get_or_create(
        id=message.id,
        defaults={
            "topic": message.topic,
            "type": message.type,
            "correlation_id": message.correlation_id,
            "key": _text(key)[:200],
        },
    )
    return created


class Consumer:
    def __init__(
        self,
        *,
        topics: list[str],
        using: Handlers,
        group_id: str,
        lenient_topics: Iterable[str] = (),
        stop: threading.Event | None = None,
    ):
        self.topics = topics
        self.using = using
        self.group_id = group_id
        self.lenient_topics = set(lenient_topics)
        self.stop = stop or threading.Event()
        self.counts = {"processed": 0, "duplicate": 0, "ignored": 0, "parked": 0}

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self._consume_until_stopped()
            except KafkaError as error:
                # A new Kafka consumer: uncommitted offsets are delivered again, and the inbox skips
                # what was done.
                log.warning("consumer lost %s (%s); reconnecting", type(error).__name__, error)
                self.stop.wait(1)

    def _consume_until_stopped(self) -> None:
        consumer = KafkaConsumer(
            bootstrap_servers=saga_settings.KAFKA_BOOTSTRAP_SERVERS,
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            session_timeout_ms=6_000,
            heartbeat_interval_ms=2_000,
        )
        consumer.subscribe(topics=self.topics, listener=_AssignmentLog(self.group_id))
        try:
            while not self.stop.is_set():
                try:
                    self._consume_batch(consumer)
                except DatabaseError as error:
                    # Keep the Kafka consumer and its partitions (the members of a group that all
                    # left and rejoined at once were seen never to be given them again); read
                    # again from the last commit, which the inbox makes safe.
                    log.warning(
                        "consumer lost %s (%s); reading again from its last commit", type(error).__name__, error
                    )
                    connection.close()
                    _rewind(consumer)
                    self.stop.wait(1)
        finally:
            consumer.close(autocommit=False)

    def _consume_batch(self, consumer: KafkaConsumer) -> None:
        batch = consumer.poll(timeout_ms=500, max_records=200)
        for records in batch.values():
            for record in records:
                outcome = consume(
                    record.topic,
                    record.value,
                    partition=record.partition,
                    offset=record.offset,
                    key=record.key,
                    using=self.using,
                    lenient=record.topic in self.lenient_topics,
                    headers=record.headers or (),
                )
                self.counts[outcome] += 1
        if batch:
            consumer.commit()  # after the database commits: a crash before this re-delivers


def _rewind(consumer: KafkaConsumer) -> None:
    """Go back, on each partition read, to the offset last committed."""
    for partition in consumer.assignment():
        committed = consumer.committed(partition)
        if committed is None:
            consumer.seek_to_beginning(partition)
        else:
            consumer.seek(partition, committed)


class _AssignmentLog(ConsumerRebalanceListener):
    """Says which partitions this consumer reads, whenever its group shares them out anew: with
    several consumers in a group (scaled out), each reads its own share of the partitions."""

    def __init__(self, group_id: str):
        self.group_id = group_id

    def on_partitions_revoked(self, revoked: Any) -> None:
        pass  # offsets are committed after each batch: nothing to save before a rebalance

    def on_partitions_assigned(self, assigned: Any) -> None:
        shares = sorted(f"{p.topic}[{p.partition}]" for p in assigned)
        log.info("consumer of group %s assigned %s", self.group_id, ", ".join(shares) or "no partition")


def _text(raw: bytes | None) -> str:
    return (raw or b"").decode(errors="replace").replace("\x00", "\\x00")  # PostgreSQL text has no NUL
