"""The sweeper rings again the sagas that should have moved by now, unless they are only waiting
their turn behind a long queue of doorbells (a burst): against the real broker, with no worker."""

from datetime import timedelta
from decimal import Decimal

import pytest
import redis
from django.conf import settings
from django.utils import timezone

from customers import services as customers
from orders import services as orders
from saga.models import SagaInstance
from saga.orchestration.tasks import advance_saga, sweep_sagas

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queue():
    """The doorbells' queue in Redis, empty before and after the test."""
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    name = advance_saga.app.amqp.router.route({}, advance_saga.name)["queue"].name
    client.delete(name)
    yield lambda: client.llen(name), lambda: client.delete(name)
    client.delete(name)


def stalled_sagas(count: int) -> list:
    """Sagas placed while no worker runs (their doorbells wait in the queue), past their stall time."""
    customer = customers.customer_create(name="Ada", balance=Decimal("100.00"))
    placed = [orders.order_place(customer_id=customer.pk, items=[], amount=Decimal("1.00")).order for _ in range(count)]
    saga_ids = [order.saga_id for order in placed]
    SagaInstance.objects.filter(pk__in=saga_ids).update(wake_at=timezone.now() - timedelta(seconds=1))
    return saga_ids


def test_sagas_waiting_their_turn_in_the_queue_are_not_rung_again(queue):
    length, _ = queue
    saga_ids = stalled_sagas(3)
    assert length() == 3
    assert sweep_sagas.apply().get() == 0
    assert length() == 3
    # They are looked at again after the stall time, in case the queue was not theirs.
    assert not SagaInstance.objects.filter(pk__in=saga_ids, wake_at__lte=timezone.now()).exists()


def test_sagas_whose_doorbells_were_lost_are_rung_again(queue):
    length, flush = queue
    saga_ids = stalled_sagas(3)
    flush()
    assert sweep_sagas.apply().get() == 3
    assert length() == 3
    assert not SagaInstance.objects.filter(pk__in=saga_ids, wake_at__lte=timezone.now()).exists()


def test_a_saga_whose_timer_is_due_is_rung_whatever_the_queue(queue):
    length, _ = queue
    saga_ids = stalled_sagas(3)
    past = timezone.now() - timedelta(seconds=1)
    SagaInstance.objects.filter(pk=saga_ids[0]).update(retry_at=past)  # a backoff that has ended
    assert sweep_sagas.apply().get() == 1
    assert length() == 4
