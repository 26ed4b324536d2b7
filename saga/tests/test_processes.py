"""The processes a project runs (saga/README.md), started as real processes under the minimal
settings: a Celery worker with its beat, `relay_outbox` and `consume_events`, against the real
PostgreSQL, Redis and Kafka-compatible broker."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.db import connection, transaction
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from saga.messaging import topic_for
from saga.models import InboxMessage, OutboxMessage, ProcessedCommand, SagaInstance, SagaStatus
from saga.orchestration import engine
from saga.orchestration.runtime import Runtime
from saga.tests import celery_app
from saga.tests.toyshop.models import Toy
from saga.tests.toyshop.saga import TOY_ORDER, toy_order_place

from .conftest import order_data, reservation, stock, wait_for

pytestmark = pytest.mark.worker
ROOT = Path(__file__).resolve().parents[2]
WORKER_FLAGS = ("--concurrency=1", "--loglevel=INFO", "--without-heartbeat", "--without-gossip", "--without-mingle")


class Processes:
    """Processes of the toy project, each in its own process group, stopped at the test's end."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.env, self.logs = env, logs
        self.started: list[subprocess.Popen] = []

    def start(self, name: str, *argv: str) -> None:
        with open(self.logs / f"{name}.log", "w") as log:  # the process writes to its own copy
            process = subprocess.Popen(
                [sys.executable, *argv],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.started.append(process)

    def worker(self) -> None:
        """`celery worker -B`: the worker, with the beat (the sweeper) inside."""
        schedule = str(self.logs / "beat-schedule")
        self.start("worker", "-m", "celery", "-A", "saga.tests", "worker", "-B", "--schedule", schedule, *WORKER_FLAGS)

    def command(self, *args: str) -> None:
        self.start(args[0], "-m", "django", *args)

    def remote(self, *participants: str) -> None:
        """The processes started from now on take these participants for remote."""
        self.env["TOYSHOP_REMOTE_PARTICIPANTS"] = ",".join(participants)

    def wait_for(self, condition, *, what: str, timeout: float = 60) -> None:
        try:
            wait_for(condition, what=what, timeout=timeout)
        except AssertionError as timed_out:
            tails = {path.name: path.read_text()[-2000:] for path in sorted(self.logs.glob("*.log"))}
            raise AssertionError(f"{timed_out}; the processes' logs end with {tails}") from None

    def stop(self) -> None:
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=20)


@pytest.fixture
def processes(transactional_db, settings, tmp_path):
    """Processes that share the test's database and a Celery queue of the test's own."""
    db = connection.settings_dict
    queue = f"toyshop-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    previous, celery_app.conf.task_default_queue = celery_app.conf.task_default_queue, queue
    started = Processes(
        {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "saga.tests.settings",
            "DATABASE_URL": f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "TOYSHOP_CELERY_QUEUE": queue,
            "TOYSHOP_SWEEP_INTERVAL": "0.5",
        },
        tmp_path,
    )
    yield started
    started.stop()
    celery_app.conf.task_default_queue = previous


def status(saga_id) -> str:
    return SagaInstance.objects.get(pk=saga_id).status


def read(roles: list[str], until, *, timeout: float = 60) -> list[dict]:
    """The messages of the roles' topics, from their start, until `until(messages)` holds."""
    consumer = KafkaConsumer(
        bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"], enable_auto_commit=False, group_id=None
    )
    messages: list[dict] = []
    try:
        topics = [topic_for(role) for role in roles]
        partitions = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        deadline = time.monotonic() + timeout
        while not until(messages):
            assert time.monotonic() < deadline, f"timed out reading {topics}: {messages}"
            for records in consumer.poll(timeout_ms=200).values():
                messages.extend({"topic": r.topic, "key": r.key.decode(), **json.loads(r.value)} for r in records)
        return messages
    finally:
        consumer.close()


def test_worker_relay_and_consumer_carry_a_toy_order_through_kafka(processes):
    Toy.objects.create(sku="TEDDY", stock=5)
    processes.worker()
    processes.command("relay_outbox", "--poll-interval", "0.2")
    processes.command("consume_events")
    order_id = toy_order_place(sku="TEDDY", quantity=2, delivery=True)  # the doorbell rings on commit
    saga_id = SagaInstance.objects.get(aggregate_id=order_id).pk
    processes.wait_for(lambda: status(saga_id) == SagaStatus.WAITING, what="the saga to wait for a courier")
    assert (stock(), reservation(order_id)) == (3, "RESERVED")

    booked = {"id": str(uuid.uuid4()), "type": "courier.booked", "payload": {"order_id": str(order_id)}}
    producer = KafkaProducer(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"], acks="all")
    producer.send(topic_for("courier_events"), key=str(order_id).encode(), value=json.dumps(booked).encode()).get(30)
    producer.close()
    processes.wait_for(lambda: status(saga_id) == SagaStatus.COMPLETED, what="consume_events to move the saga on")
    assert (stock(), reservation(order_id)) == (3, "SHIPPED")
    assert InboxMessage.objects.filter(pk=booked["id"], topic="courier_events").exists()

    def completed(messages) -> bool:
        return any(m["type"] == "saga.completed" and m["correlation_id"] == str(saga_id) for m in messages)

    received = read(["saga_events", "toy_events"], completed)
    mine = [(m["topic"], m["type"]) for m in received if m["key"] == str(order_id)]
    assert sorted(mine) == [
        ("toy_events", "toy.reserved"),
        ("toy_events", "toy.shipped"),
        ("toyshop.sagas", "saga.completed"),
        ("toyshop.sagas", "saga.started"),
    ]
    processes.wait_for(
        lambda: not OutboxMessage.objects.filter(sent_at__isnull=True).exists(),
        what="the relay to mark its messages sent",
    )


def test_a_remote_participant_serves_the_same_saga_from_its_own_process(processes):
    Toy.objects.create(sku="TEDDY", stock=5)
    processes.remote("toybox")
    processes.worker()
    processes.command("relay_outbox", "--poll-interval", "0.2")
    processes.command("consume_events")  # the replies, on toy_events
    processes.command("run_participant", "toybox")  # the commands, on toy_commands
    order_id = toy_order_place(sku="TEDDY", quantity=2)
    saga_id = SagaInstance.objects.get(aggregate_id=order_id).pk
    processes.wait_for(lambda: status(saga_id) == SagaStatus.COMPLETED, what="the remote toybox to serve the saga")
    assert (stock(), reservation(order_id)) == (3, "SHIPPED")
    sent = OutboxMessage.objects.filter(correlation_id=saga_id, topic="toy_commands").values_list("type", flat=True)
    assert list(sent) == ["toy.reserve", "toy.ship"]
    assert set(ProcessedCommand.objects.values_list("command", "participant")) == {
        ("toy.reserve", "toybox"),
        ("toy.ship", "toybox"),
    }


def test_the_beat_sweeper_moves_a_saga_whose_doorbell_was_lost(processes):
    Toy.objects.create(sku="TEDDY", stock=5)
    order_id = uuid.uuid4()
    lost = Runtime(schedule=lambda saga_id, delay: None, stall_after=0)  # no Celery message at all
    with transaction.atomic():
        saga_id = engine.start(TOY_ORDER, aggregate_id=order_id, data=order_data(order_id), runtime=lost).id
    processes.worker()
    processes.wait_for(lambda: status(saga_id) == SagaStatus.COMPLETED, what="the sweeper to find the saga")
    assert (stock(), reservation(order_id)) == (3, "SHIPPED")
