"""Locks held by a session that went away, or by a step that takes long, do not hold the shop.

The server ends a vanished host's session (its own keepalives) and one left idle in a
transaction; the request paths that lock a saga's row wait a few seconds for it, then answer 409
(HTTP) or let the message come again (the consumer), instead of hanging."""

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal

import psycopg2
import pytest
from django.db import connection, transaction

from customers import services as customers
from orders import services as orders
from saga.messaging import inbox
from saga.models import DeadLetter, InboxMessage, SagaInstance
from tests.conftest import wait_for as wait_until

from .kafka import send

LOCK_TIMEOUT = 0.5  # seconds the request paths wait for a saga's row in these tests
ANSWER_WITHIN = 10.0  # what "does not hang" means here: well past LOCK_TIMEOUT, far below hours


@pytest.fixture
def delivery_order(transactional_db):
    """A delivery order whose saga has not reached its wait yet (accept and cancel both apply)."""
    customer = customers.customer_create(name="Ada", balance=Decimal("100.00"))
    return orders.order_place(customer_id=customer.pk, items=[], amount=Decimal("10.00"), fulfillment="delivery").order


def session(**overrides: str) -> "psycopg2.extensions.connection":
    """A connection of its own to the test database, as the shop opens them (plus `overrides`)."""
    return psycopg2.connect(**{**connection.get_connection_params(), **overrides})


@contextmanager
def saga_row_locked(saga_id: uuid.UUID) -> Iterator[None]:
    """Another session (a worker in a long step, or one whose host vanished) holds the saga's row."""
    holder = session()
    try:
        with holder.cursor() as cursor:
            cursor.execute(f"SELECT id FROM {SagaInstance._meta.db_table} WHERE id = %s FOR UPDATE", [str(saga_id)])
        yield
    finally:
        holder.close()  # rolls back: the row is free again


def within(seconds: float, call: Callable[[], object]) -> object:
    """`call`'s result (or the exception it raised), or a failure if it has not returned by then.
    In its own thread, so a call that hangs fails the test instead of hanging it."""
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(call())
        except Exception as error:  # noqa: BLE001 - handed back to the test
            outcome.append(error)
        finally:
            connection.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert outcome, f"no answer within {seconds} s: still waiting for the saga's row"
    return outcome[0]


@pytest.mark.parametrize("action", ["accept", "cancel"])
def test_accept_and_cancel_answer_409_while_the_sagas_row_is_locked(api, delivery_order, settings, action):
    settings.SAGA_LOCK_TIMEOUT = LOCK_TIMEOUT
    with saga_row_locked(delivery_order.saga_id):
        started = time.monotonic()
        response = within(ANSWER_WITHIN, lambda: api.post(f"/api/orders/{delivery_order.pk}/{action}"))
        waited = time.monotonic() - started
    assert response.status_code == 409, response.content
    assert response.json()["code"] == "saga_busy"
    assert LOCK_TIMEOUT <= waited < ANSWER_WITHIN
    # Nothing happened: the same request, once the row is free, does what it says.
    assert api.post(f"/api/orders/{delivery_order.pk}/{action}").status_code == 202


def test_the_consumers_acceptance_comes_again_while_the_sagas_row_is_locked(delivery_order, settings):
    settings.SAGA_LOCK_TIMEOUT = LOCK_TIMEOUT
    message = json.dumps(
        {"id": str(uuid.uuid4()), "type": "fulfillment.accepted", "payload": {"order_id": str(delivery_order.pk)}}
    ).encode()
    with saga_row_locked(delivery_order.saga_id):
        outcome = within(ANSWER_WITHIN, lambda: inbox.consume("fulfillment_events", message))
    # An error the consumer retries (it reconnects and the message comes again), not a parked message.
    assert isinstance(outcome, Exception) and not isinstance(outcome, inbox.MalformedMessage), outcome
    assert not DeadLetter.objects.exists()
    assert not InboxMessage.objects.exists()
    # The message comes again once the row is free: the acceptance is kept for the saga's wait.
    assert inbox.consume("fulfillment_events", message) == "processed"
    assert "fulfillment.accepted" in SagaInstance.objects.get(pk=delivery_order.saga_id).data["_events"]


def test_the_consumer_gets_an_acceptance_again_after_the_sagas_row_was_locked(app_env, start_command):
    """The whole way: `consume_events` gives up on the row after SAGA_LOCK_TIMEOUT (3 s), reconnects,
    and the message, whose offset it did not commit, comes again."""
    order = orders.order_place(
        customer_id=customers.customer_create(name="Ada", balance=Decimal("100.00")).pk,
        items=[],
        amount=Decimal("10.00"),
        fulfillment="delivery",
    ).order
    start_command("consume_events")
    message = {"id": str(uuid.uuid4()), "type": "fulfillment.accepted", "payload": {"order_id": str(order.pk)}}
    with saga_row_locked(order.saga_id):
        send("fulfillment_events", message, key=str(order.pk))
        wait_until(lambda: sessions_waiting_for_a_lock() == 1, timeout=60, what="the consumer to wait for the row")
        wait_until(lambda: sessions_waiting_for_a_lock() == 0, timeout=ANSWER_WITHIN, what="the consumer to give up")
    wait_until(lambda: "fulfillment.accepted" in saga_events(order.saga_id), timeout=60, what="the message again")
    assert InboxMessage.objects.filter(id=message["id"]).count() == 1
    assert not DeadLetter.objects.exists()


def sessions_waiting_for_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0]


def saga_events(saga_id: uuid.UUID) -> dict:
    return SagaInstance.objects.get(pk=saga_id).data.get("_events", {})


def test_a_new_connection_has_the_servers_keepalives_and_idle_timeout(transactional_db, settings):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('tcp_keepalives_idle', 'tcp_keepalives_interval', 'tcp_keepalives_count', "
            "'idle_in_transaction_session_timeout')"
        )
        found = dict(cursor.fetchall())
    idle_timeout = found.pop("idle_in_transaction_session_timeout")  # milliseconds
    assert found == {"tcp_keepalives_idle": "30", "tcp_keepalives_interval": "10", "tcp_keepalives_count": "3"}
    assert int(idle_timeout) == settings.DATABASE_IDLE_IN_TRANSACTION_TIMEOUT * 1000 > 0


def test_a_session_idle_in_its_transaction_is_ended_and_its_locks_released(delivery_order):
    from shop.settings import database_session_options

    holder = session(options=database_session_options(idle_in_transaction_timeout=0.3))
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            (pid,) = cursor.fetchone()
            cursor.execute(
                f"SELECT id FROM {SagaInstance._meta.db_table} WHERE id = %s FOR UPDATE", [str(delivery_order.saga_id)]
            )
        # The holder now does nothing, as a hung worker would; the server ends its session.
        deadline = time.monotonic() + ANSWER_WITHIN
        while backend_alive(pid):
            assert time.monotonic() < deadline, "the idle session was not ended"
            time.sleep(0.05)
    finally:
        holder.close()
    with connection.cursor() as cursor:  # the row is free: taken at once
        cursor.execute("SET lock_timeout = '100ms'")
        cursor.execute(
            f"SELECT id FROM {SagaInstance._meta.db_table} WHERE id = %s FOR UPDATE", [str(delivery_order.saga_id)]
        )
        cursor.execute("RESET lock_timeout")


def backend_alive(pid: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()[0] == 1


def test_a_signal_inside_the_callers_transaction_leaves_the_callers_lock_timeout(delivery_order):
    """The consumer's transaction (or a step's) goes on after the signal with its own lock timeout."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL lock_timeout = '7s'")
        assert orders.order_accepted_by_courier(order_id=delivery_order.pk)
        cursor.execute("SHOW lock_timeout")
        assert cursor.fetchone()[0] == "7s"
