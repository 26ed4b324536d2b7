import threading
import time
from collections.abc import Callable
from decimal import Decimal
from typing import TypeVar

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from rest_framework.test import APIClient

from customers import services as customers
from inventory import services as inventory
from saga.orchestration import scheduling


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the tests of this run's topology (SHOP_TOPOLOGY): `@pytest.mark.topology("services")`
    for the services topology only, `("monolith", "services")` for both; unmarked, the monolith only.
    `make test` runs the suite in each topology (docs/topology.md)."""
    ran, left = [], []
    for item in items:
        marker = item.get_closest_marker("topology")
        topologies = marker.args if marker is not None else ("monolith",)
        (ran if settings.SHOP_TOPOLOGY in topologies else left).append(item)
    if left:
        config.hook.pytest_deselected(items=left)
        items[:] = ran


@pytest.fixture(autouse=True)
def broker_not_paused(monkeypatch):
    """Each test starts with this process ringing doorbells: a test that froze the broker leaves
    the process's pause behind (scheduling.BROKER_PAUSE_SECONDS), and a saga placed meanwhile is
    left due for the sweeper, which a harness's clock, set in the past, reads as a backoff."""
    monkeypatch.setattr(scheduling, "_broker_paused_until", 0.0)


T = TypeVar("T")


@pytest.fixture
def superuser(db):
    return get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")


@pytest.fixture
def api(superuser) -> APIClient:
    client = APIClient()
    client.force_authenticate(superuser)
    return client


@pytest.fixture
def customer(db):
    return customers.customer_create(name="Ada", email="ada@example.com", balance=Decimal("500.00"))


@pytest.fixture
def product(db):
    return inventory.product_create(sku="WIDGET", name="Widget", price=Decimal("25.00"), stock=10)


def run_concurrently(calls: list[Callable[[], object]]) -> list[object]:
    """Run each call in its own thread (and so its own database connection), all released at
    once by a barrier. Returns results or the exceptions raised, in call order."""
    barrier = threading.Barrier(len(calls))
    results: list[object] = [None] * len(calls)

    def run(index: int, call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except Exception as error:  # noqa: BLE001 - handed back to the test to assert on
            results[index] = error
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def while_uncommitted(write: Callable[[], object], call: Callable[[], T]) -> T:
    """`call`, run in a session of its own while `write`'s transaction, in another, holds what it
    wrote uncommitted; `write` commits once `call` waits on one of those rows. What `call` returned
    (or raised) is handed back."""
    written, commit_now, result = threading.Event(), threading.Event(), {}

    def writing() -> None:
        try:
            with transaction.atomic():
                write()
                written.set()
                commit_now.wait(timeout=30)
        finally:
            connection.close()

    def calling() -> None:
        try:
            result["value"] = call()
        except Exception as error:  # noqa: BLE001 - raised again in the test's thread
            result["error"] = error
        finally:
            connection.close()

    writer = threading.Thread(target=writing)
    writer.start()
    assert written.wait(timeout=30), "the write did not finish"
    caller = threading.Thread(target=calling)
    caller.start()
    wait_for(blocked_on_a_lock, what="the call to wait on an uncommitted row")
    commit_now.set()
    writer.join(timeout=30)
    caller.join(timeout=30)
    if "error" in result:
        raise result["error"]
    return result["value"]


def blocked_on_a_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


def wait_for(condition: Callable[[], object], *, timeout: float = 60, what: str = "condition") -> object:
    """Poll `condition` until it is truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def own_redis(tmp_path):
    """A Redis of the test's own (to freeze), as Celery's broker for the test."""
    from tests.own_redis import OwnRedis, celery_broker

    server = OwnRedis(tmp_path / "redis")
    with celery_broker(server.url):
        yield server
    server.stop()
