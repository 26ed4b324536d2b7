"""Celery tasks after the database terminated their connection (`pg_terminate_backend`): none is
spent on the dead connection. Each task starts on a checked connection, does its work again on a
new one when the connection dies under it, and, while the database is really away, rings again
later (advance_saga) or leaves it to its next beat (sweep, purge) instead of failing.

Tasks run here with `apply()`, in this process, on this thread's own persistent connection, as a
worker's pool process runs them; the backend is terminated for real from another connection."""

import time
from collections.abc import Callable
from decimal import Decimal

import psycopg2
import pytest
from django.db import connection

from customers import services as customers
from orders import services as orders
from orders.models import Order
from saga.messaging.tasks import purge_outbox
from saga.orchestration import engine
from saga.orchestration.scheduling import advance_saga
from saga.orchestration.sweeper import sweep_sagas

pytestmark = pytest.mark.django_db(transaction=True)


def terminate_own_backend() -> None:
    """Have this thread's backend terminated by another connection, and wait until it is gone."""
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    other = psycopg2.connect(**connection.get_connection_params())
    try:
        other.autocommit = True
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
                if cursor.fetchone()[0] == 0:
                    return
                time.sleep(0.02)
    finally:
        other.close()
    raise AssertionError("backend not terminated")


@pytest.fixture
def order() -> Order:
    customer = customers.customer_create(name="Ada", balance=Decimal("100.00"))
    return orders.order_place(customer_id=customer.pk, items=[], amount=Decimal("10.00")).order


def confirmed(order: Order) -> bool:
    order.refresh_from_db()
    return order.status == Order.Status.CONFIRMED


def test_advance_saga_after_its_connection_was_terminated_moves_the_saga(order):
    terminate_own_backend()
    result = advance_saga.apply((str(order.saga_id),))
    assert result.successful(), result.traceback
    assert confirmed(order)


def test_advance_saga_whose_connection_dies_under_it_moves_the_saga(order, monkeypatch):
    real_advance, real_attempt = engine.advance, engine.advancing.attempt_now
    calls: list[int] = []

    def counted(*args: object, **kwargs: object) -> None:
        calls.append(1)
        return real_advance(*args, **kwargs)

    def dies_first(*args: object) -> object:
        if len(calls) == 1:
            terminate_own_backend()  # in the step's transaction, which will not commit
        return real_attempt(*args)

    monkeypatch.setattr(engine, "advance", counted)
    monkeypatch.setattr(engine.advancing, "attempt_now", dies_first)
    result = advance_saga.apply((str(order.saga_id),))
    assert result.successful(), result.traceback
    assert len(calls) == 2 and confirmed(order)


def test_sweep_and_purge_after_their_connection_was_terminated_run(order):
    for task in (sweep_sagas, purge_outbox):
        terminate_own_backend()
        result = task.apply()
        assert result.successful(), result.traceback


def away(work: Callable[[], object]) -> object:
    """Run `work` while the database is away: this connection terminated, new ones refused."""
    real_port = connection.settings_dict["PORT"]
    terminate_own_backend()
    connection.settings_dict["PORT"] = "1"
    try:
        return work()
    finally:
        connection.settings_dict["PORT"] = real_port


def test_while_the_database_is_away_tasks_ring_again_or_wait_for_their_beat(order, monkeypatch, caplog):
    swept = away(sweep_sagas.apply)
    assert swept.successful() and swept.result == 0
    rung: list[int] = []
    monkeypatch.setattr(advance_saga, "retry", lambda countdown, **kw: rung.append(countdown) or RingAgain())
    advanced = away(lambda: advance_saga.apply((str(order.saga_id),)))
    assert isinstance(advanced.result, RingAgain) and rung == [1]
    # Back: the doorbell rings, the saga moves.
    assert advance_saga.apply((str(order.saga_id),)).successful() and confirmed(order)


class RingAgain(Exception):
    """Stands for Celery's Retry, which apply() would run at once."""
