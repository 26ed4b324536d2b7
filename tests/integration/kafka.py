"""Reading what reached Kafka, and a broker of a test's own to freeze or restart."""

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from saga.messaging import topic_for
from tools.devstack import services as devstack


@dataclass(frozen=True)
class Received:
    topic: str
    partition: int
    offset: int
    key: str
    headers: dict[str, str]
    body: dict


def read_topics(
    roles: list[str], until: Callable[[list[Received]], bool], *, timeout: float = 90, bootstrap: str | None = None
) -> list[Received]:
    """Everything in the topics of `roles`, read from the start (manual assignment: no group join
    delay) until `until(received)` holds; fails the test at the deadline."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap or settings.KAFKA_BOOTSTRAP_SERVERS,
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=500,
    )
    received: list[Received] = []
    deadline = time.monotonic() + timeout
    try:
        assigned: set[TopicPartition] = set()
        while time.monotonic() < deadline:
            wanted = _partitions(consumer, [topic_for(r) for r in roles])
            if wanted != assigned:
                consumer.assign(list(wanted))
                consumer.seek_to_beginning(*(wanted - assigned))
                assigned = wanted
            for records in consumer.poll(timeout_ms=200, max_records=5000).values():
                received.extend(_received(r) for r in records)
            if assigned and until(received):
                return received
        raise AssertionError(f"timed out reading {roles}: {len(received)} messages so far")
    finally:
        consumer.close()


def _partitions(consumer: KafkaConsumer, topics: list[str]) -> set[TopicPartition]:
    return {TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())}


def _received(record) -> Received:
    return Received(
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        key=record.key.decode(),
        headers={k: v.decode() for k, v in record.headers},
        body=json.loads(record.value),
    )


def send(role: str, body: dict | bytes, *, key: str = "k", bootstrap: str | None = None) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap or settings.KAFKA_BOOTSTRAP_SERVERS, acks="all")
    value = body if isinstance(body, bytes) else json.dumps(body).encode()
    producer.send(topic_for(role), key=key.encode(), value=value).get(timeout=30)
    producer.close()


class OwnBroker:
    """A Tansu broker for one test (memory storage), to freeze, thaw or restart empty."""

    def __init__(self, workdir: Path):
        workdir.mkdir(parents=True, exist_ok=True)
        self.service = devstack.kafka(workdir)
        self.address = self.service.start()
        self.port = int(self.address.rsplit(":", 1)[1])

    def freeze(self) -> None:
        self.service.proc.send_signal(19)  # SIGSTOP: connections hang, as with a stuck broker

    def thaw(self) -> None:
        self.service.proc.send_signal(18)  # SIGCONT

    def restart_empty(self) -> None:
        self.service.stop()
        self.service.start(port=self.port)

    def stop(self) -> None:
        self.thaw()
        self.service.stop()
