"""Real Celery workers (separate processes) against the test database and the real Redis."""

import os
import signal
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import pytest
import redis
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Count

from customers import selectors as customer_selectors
from inventory import selectors as inventory_selectors
from orders.models import Order
from saga.messaging import catalog
from saga.models import TERMINAL, SagaInstance, SagaStep
from tests.conftest import wait_for as wait_until

ROOT = Path(__file__).resolve().parents[2]
# Fast recovery for tests: a saga that has not moved for 2 s is re-enqueued by the sweeper.
WORKER_ENV = {"SAGA_STALL_AFTER": "2", "SAGA_SWEEP_INTERVAL": "0.5", "SHOP_ACCEPTANCE_TIMEOUT": "4"}


def database_url(alias: str = DEFAULT_DB_ALIAS) -> str:
    db = connections[alias].settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class Process:
    """A process of the shop (worker, relay, consumer) in its own process group, so a SIGKILL
    takes the whole of it, as a crash would."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str]):
        self.log_path = ROOT / ".devstack" / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.log = open(self.log_path, "w")  # noqa: SIM115 - open while the process runs, closed by stop()
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env={**os.environ, **env}, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def signal(self, signum: int) -> None:
        os.killpg(self.process.pid, signum)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


def context_database_urls() -> dict[str, str]:
    """In the services topology, each context's test database for the processes of any context
    (ORDERS_DATABASE_URL, CUSTOMERS_DATABASE_URL, ...); nothing in the monolith."""
    if settings.SHOP_TOPOLOGY != "services":
        return {}
    aliases = {"orders": DEFAULT_DB_ALIAS, **{context: context for context in settings.PARTICIPANT_CONTEXTS}}
    return {f"{context.upper()}_DATABASE_URL": database_url(alias) for context, alias in aliases.items()}


@pytest.fixture
def app_env(transactional_db, settings) -> dict[str, str]:
    """What every process a test starts shares with it: the test database, and a Celery queue and
    Kafka topics of this test's own, so nothing of another test (or of `make run`) reaches it."""
    from shop.celery import app

    suffix = uuid.uuid4().hex[:8]
    queue = f"test-{suffix}"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    settings.SAGA_STALL_AFTER = float(WORKER_ENV["SAGA_STALL_AFTER"])
    settings.KAFKA_TOPICS = {role: f"{role}.{suffix}" for role in catalog.roles()}
    previous, app.conf.task_default_queue = app.conf.task_default_queue, queue
    (ROOT / ".devstack").mkdir(exist_ok=True)
    yield {
        **WORKER_ENV,
        "DATABASE_URL": database_url(),
        **context_database_urls(),
        "SHOP_CELERY_QUEUE": queue,
        "KAFKA_BOOTSTRAP_SERVERS": settings.KAFKA_BOOTSTRAP_SERVERS,
        **{f"KAFKA_TOPIC_{role.upper()}": name for role, name in settings.KAFKA_TOPICS.items()},
    }
    app.conf.task_default_queue = previous


@pytest.fixture
def start_process(app_env):
    started: list[Process] = []

    def start(name: str, argv: list[str], **extra_env: str) -> Process:
        process = Process(name, argv, {**app_env, **extra_env})
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def start_worker(start_process):
    """`celery worker -B`: two pool processes and the beat (the sweeper)."""

    def start(**extra_env: str) -> Process:
        argv = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "shop",
            "worker",
            "-B",
            "--concurrency",
            "2",
            "--loglevel",
            "INFO",
            "--schedule",
            str(ROOT / ".devstack" / f"beat-{uuid.uuid4().hex[:6]}"),
            "--without-heartbeat",
            "--without-gossip",
            "--without-mingle",
        ]
        return start_process("worker", argv, **extra_env)

    return start


@pytest.fixture
def start_command(start_process):
    """A management command (relay_outbox, consume_events, run_participant ...)."""

    def start(*args: str, **extra_env: str) -> Process:
        return start_process(args[0], [sys.executable, "manage.py", *args], **extra_env)

    return start


@pytest.fixture
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def all_terminal(saga_ids) -> bool:
    return not SagaInstance.objects.filter(pk__in=list(saga_ids)).exclude(status__in=TERMINAL).exists()


def wait_for_terminal(orders: list[Order], *, timeout: float = 30) -> None:
    saga_ids = [o.saga_id for o in orders]
    try:
        wait_until(lambda: all_terminal(saga_ids), timeout=timeout, what=f"{len(orders)} sagas to finish")
    except AssertionError as timed_out:
        stuck = SagaInstance.objects.filter(pk__in=saga_ids).exclude(status__in=TERMINAL)
        details = [(s.id, s.status, s.current_step, s.step_index, s.retry_at, s.wake_at, s.error) for s in stuck[:5]]
        raise AssertionError(f"{timed_out}; still moving: {details}") from None


def statuses(orders: list[Order]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for status, reason in Order.objects.filter(pk__in=[o.pk for o in orders]).values_list("status", "reason"):
        key = f"{status}/{reason}" if reason else status
        counts[key] = counts.get(key, 0) + 1
    return counts


def assert_invariants(start_balances: dict, start_stock: dict) -> None:
    """The contract's invariants at rest, and no side effect twice."""
    confirmed = Order.objects.filter(status=Order.Status.CONFIRMED).prefetch_related("lines")
    spent: dict = {}
    sold: dict = {}
    for order in confirmed:
        spent[order.customer_id] = spent.get(order.customer_id, Decimal("0")) + order.total
        for line in order.lines.all():
            sold[line.product_id] = sold.get(line.product_id, 0) + line.quantity
    for customer in customer_selectors.customer_list():
        expected = start_balances[customer.pk] - spent.get(customer.pk, Decimal("0"))
        assert (customer.balance, customer.reserved) == (expected, Decimal("0.00")), customer.name
    for product in inventory_selectors.product_list():
        assert (product.stock, product.reserved) == (start_stock[product.pk] - sold.get(product.pk, 0), 0), product.sku
    assert not Order.objects.filter(status__in=[Order.Status.PENDING, Order.Status.AWAITING_ACCEPTANCE]).exists()
    twice = (
        SagaStep.objects.filter(status=SagaStep.Status.SUCCEEDED)
        .values("saga_id", "name", "kind")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert not twice.exists(), list(twice)
