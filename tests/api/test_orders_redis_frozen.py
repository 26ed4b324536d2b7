"""PostgreSQL is the ledger: with Redis frozen (a stalled failover, a paused host), orders are
still taken at once, and their sagas are rung once Redis is back."""

import threading
import time

import pytest
from django.db import connection

from saga.models import SagaInstance
from saga.orchestration.sweeper import sweep_sagas
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ORDERS = 10


@pytest.fixture
def redis_cache(own_redis, settings):
    """The throttle counts in Redis, as in production."""
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": own_redis.url,
            "OPTIONS": settings.REDIS_TIMEOUTS,
        }
    }


def place_orders(api, customer_id: str) -> list[tuple[int, float, str]]:
    """(status, seconds, saga id) of each order placed, one after the other, in a thread of its own
    (a hung request must not hang the test)."""
    answers: list[tuple[int, float, str]] = []

    def run() -> None:
        try:
            for _ in range(ORDERS):
                started = time.monotonic()
                response = api.post("/api/orders", {"customer_id": customer_id, "amount": "1.00"}, format="json")
                answers.append((response.status_code, time.monotonic() - started, response.json()["saga_id"]))
        finally:
            connection.close()

    placing = threading.Thread(target=run, daemon=True)
    placing.start()
    placing.join(timeout=10)
    return answers


def test_orders_are_taken_while_redis_is_frozen_and_rung_once_it_is_back(
    api, customer, own_redis, redis_cache, settings
):
    with own_redis.frozen():
        answers = place_orders(api, str(customer.pk))
    assert len(answers) == ORDERS, f"only {len(answers)} of {ORDERS} orders answered in 10 s"
    assert {status for status, _, _ in answers} == {202}
    slowest = max(seconds for _, seconds, _ in answers)
    assert slowest < 1.5, f"an order took {slowest:.1f} s"
    # Their doorbells could not be rung: the sweeper (each beat) rings them once Redis answers.
    saga_ids = [saga_id for _, _, saga_id in answers]
    assert SagaInstance.objects.filter(pk__in=saga_ids).count() == ORDERS

    def all_rung() -> bool:
        swept = sweep_sagas.apply()
        assert swept.successful(), swept.traceback
        rung = own_redis.client.lrange(settings.CELERY_TASK_DEFAULT_QUEUE, 0, -1)
        return all(any(saga_id.encode() in raw for raw in rung) for saga_id in saga_ids)

    try:
        wait_for(all_rung, timeout=20, what="the sweeper to ring the orders' sagas")
    except AssertionError as timed_out:
        app = sweep_sagas.app
        seen = {key.decode(): own_redis.client.type(key).decode() for key in own_redis.client.scan_iter()}
        where = f"app {app.main}, broker {app.conf.broker_url}, in its Redis: {seen}"
        raise AssertionError(f"{timed_out}; {where}") from None
