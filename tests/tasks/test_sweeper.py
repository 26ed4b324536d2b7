"""The sweeper rings again the sagas that should have moved by now, unless they are only waiting
their turn behind a long queue of doorbells (a burst): against the real broker, with no worker.
It decides per saga, and it talks to the broker only after committing."""

import base64
import json
import threading
import time
from datetime import timedelta
from decimal import Decimal

import pytest
import redis
from celery import current_app
from django.conf import settings
from django.db import connection
from django.utils import timezone

from customers import services as customers
from orders import services as orders
from saga.models import SagaInstance
from saga.orchestration.scheduling import advance_saga
from saga.orchestration.sweeper import sweep_sagas
from saga.tasks import purge_outbox
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def queue_of(task) -> str:
    return current_app.amqp.router.route({}, task.name)["queue"].name


class Queue:
    """The doorbells' queue in a Redis, seen as a worker sees it (oldest message first)."""

    def __init__(self, url: str):
        self.client = redis.Redis.from_url(url)
        self.name = queue_of(advance_saga)

    def length(self) -> int:
        return self.client.llen(self.name)

    def flush(self) -> None:
        self.client.delete(self.name)

    def saga_ids(self) -> list[str]:
        """The saga of each doorbell, oldest first (kombu pushes on the left, workers pop on the right)."""
        return [self._args(raw)[0][0] for raw in reversed(self.client.lrange(self.name, 0, -1))]

    def lose(self, saga_id) -> None:
        """The doorbell of one saga vanishes (a failover, a worker that dropped it)."""
        for raw in self.client.lrange(self.name, 0, -1):
            if self._args(raw)[0] == [str(saga_id)]:
                assert self.client.lrem(self.name, 1, raw) == 1
                return
        raise AssertionError(f"no doorbell of saga {saga_id} in the queue")

    def work_one(self) -> str:
        """A worker takes the oldest doorbell and runs it, as Celery would."""
        args, kwargs = self._args(self.client.rpop(self.name))
        advance_saga.apply(args, kwargs)
        return args[0]

    @staticmethod
    def _args(raw: bytes) -> tuple[list, dict]:
        body = json.loads(base64.b64decode(json.loads(raw)["body"]))
        return body[0], body[1]


@pytest.fixture
def queue():
    """The devstack Redis' doorbell queue, empty before and after the test."""
    doorbells = Queue(settings.CELERY_BROKER_URL)
    doorbells.flush()
    yield doorbells
    doorbells.flush()


def placed(count: int) -> list:
    """Orders placed while no worker runs: their sagas' doorbells wait in the queue."""
    customer = customers.customer_create(name="Ada", balance=Decimal("100.00"))
    return [orders.order_place(customer_id=customer.pk, items=[], amount=Decimal("1.00")).order for _ in range(count)]


def stall(saga_ids: list) -> None:
    """Past their "should have moved by" time."""
    SagaInstance.objects.filter(pk__in=saga_ids).update(wake_at=timezone.now() - timedelta(seconds=1))


def stalled_sagas(count: int) -> list:
    saga_ids = [order.saga_id for order in placed(count)]
    stall(saga_ids)
    return saga_ids


def test_sagas_waiting_their_turn_in_the_queue_are_not_rung_again(queue):
    saga_ids = stalled_sagas(3)
    assert queue.length() == 3
    assert sweep_sagas.apply().get() == 0
    assert queue.length() == 3
    # They are looked at again later, in case their doorbells are lost after all.
    assert not SagaInstance.objects.filter(pk__in=saga_ids, wake_at__lte=timezone.now()).exists()


def test_sagas_whose_doorbells_were_lost_are_rung_again(queue):
    saga_ids = stalled_sagas(3)
    queue.flush()
    assert sweep_sagas.apply().get() == 3
    assert sorted(queue.saga_ids()) == sorted(map(str, saga_ids))
    assert not SagaInstance.objects.filter(pk__in=saga_ids, wake_at__lte=timezone.now()).exists()


def test_a_saga_whose_timer_is_due_is_rung_whatever_the_queue(queue):
    saga_ids = stalled_sagas(3)
    past = timezone.now() - timedelta(seconds=1)
    SagaInstance.objects.filter(pk=saga_ids[0]).update(retry_at=past)  # a backoff that has ended
    assert sweep_sagas.apply().get() == 1
    assert queue.length() == 4


def test_a_lost_doorbell_is_rung_again_while_the_queue_stays_busy(queue):
    """Doorbells rung after the lost one are being worked, and more wait than sagas look stalled:
    the lost one is rung at the first sweep after it stalls, and only it."""
    lost = placed(1)[0].saga_id
    queue.lose(lost)
    later = [order.saga_id for order in placed(6)]
    assert queue.work_one() == str(later[0])  # a doorbell rung after the lost one was taken
    stall([lost, *later[1:4]])  # the last ones were placed a moment ago
    assert queue.length() == 5
    assert sweep_sagas.apply().get() == 1
    assert queue.saga_ids() == [*map(str, later[1:]), str(lost)]


def test_the_beat_tasks_have_a_queue_of_their_own_that_every_worker_reads():
    doorbells = queue_of(advance_saga)
    beat = {queue_of(sweep_sagas), queue_of(purge_outbox)}
    assert doorbells not in beat  # a sweep does not wait behind a burst of doorbells
    assert {doorbells, *beat} <= set(current_app.amqp.queues)  # what a worker without -Q consumes


def sweeper_has_read_the_due_sagas() -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query ILIKE %s",
            ["%wake_at%"],
        )
        return cursor.fetchone()[0] > 0


def in_thread(call) -> threading.Thread:
    def run() -> None:
        try:
            call()
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_a_frozen_broker_leaves_no_due_saga_locked(own_redis):
    order = placed(1)[0]
    stall([order.saga_id])
    with own_redis.frozen():
        sweeping = in_thread(sweep_sagas.apply)
        wait_for(
            lambda: sweeper_has_read_the_due_sagas() or not sweeping.is_alive(),
            timeout=10,
            what="the sweeper to read the due saga",
        )
        started = time.monotonic()
        cancelling = in_thread(lambda: orders.order_cancel(order_id=order.pk))
        cancelling.join(timeout=5)
        cancel_took = time.monotonic() - started
        sweeping.join(timeout=10)
        sweep_still_waits = sweeping.is_alive()
    cancelling.join(timeout=30)
    sweeping.join(timeout=30)
    assert cancel_took < 3, f"the cancel waited {cancel_took:.1f} s for the sweeper's lock"
    assert not sweep_still_waits, "the sweeper waits on a frozen broker for ever"
