"""Real Celery workers (separate processes) against the test database and the real Redis."""
import os
import signal
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Callable

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.db.models import Count

from customers import selectors as customer_selectors
from inventory import selectors as inventory_selectors
from orders.models import Order
from saga.models import TERMINAL, SagaInstance, SagaStep

ROOT = Path(__file__).resolve().parents[2]
# Fast recovery for tests: a saga that has not moved for 2 s is re-enqueued by the sweeper.
WORKER_ENV = {"SAGA_STALL_AFTER": "2", "SAGA_SWEEP_INTERVAL": "0.5", "SHOP_ACCEPTANCE_TIMEOUT": "4"}


def wait_until(condition: Callable[[], object], *, timeout: float = 60, what: str = "condition") -> object:
    """Poll `condition` until it is truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class Worker:
    """`celery worker -B` in its own process group, so a SIGKILL takes the whole of it."""

    def __init__(self, queue: str, extra_env: dict[str, str]):
        env = {**os.environ, **WORKER_ENV, **extra_env, "DATABASE_URL": database_url(), "SHOP_CELERY_QUEUE": queue}
        self.log = open(ROOT / ".devstack" / f"worker-{queue}-{uuid.uuid4().hex[:6]}.log", "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "shop", "worker", "-B", "--concurrency", "2", "--loglevel", "INFO",
             "--schedule", str(ROOT / ".devstack" / f"beat-{queue}"), "--without-heartbeat", "--without-gossip",
             "--without-mingle"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture
def queue(settings) -> str:
    """A queue of this test's own, so no task of another test (or of `make run`) reaches it."""
    name = f"test-{uuid.uuid4().hex[:8]}"
    settings.CELERY_TASK_DEFAULT_QUEUE = name
    settings.SAGA_STALL_AFTER = float(WORKER_ENV["SAGA_STALL_AFTER"])
    from shop.celery import app

    previous, app.conf.task_default_queue = app.conf.task_default_queue, name
    yield name
    app.conf.task_default_queue = previous


@pytest.fixture
def start_worker(transactional_db, queue):
    (ROOT / ".devstack").mkdir(exist_ok=True)
    workers: list[Worker] = []

    def start(**extra_env: str) -> Worker:
        worker = Worker(queue, extra_env)
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


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
        .values("saga_id", "name", "kind").annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    assert not twice.exists(), list(twice)
