"""The database connection of the web process terminated (`pg_terminate_backend`, as a failover or
an operator does) between requests or under one: a fresh connection, or a 503 with Retry-After
when the database is really away; never a 500, and never a failure answer for a change that
committed.

The API is served here by a real WSGI server in a thread of its own, as gunicorn serves it: a
persistent connection (CONN_MAX_AGE) per thread, Django's request_started/finished handlers
(which the test client switches off), real commits (transactional_db)."""

import http.client
import json
import threading
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from django.contrib.auth import get_user_model
from django.core.handlers.wsgi import WSGIHandler
from django.db import connection, connections
from rest_framework.authtoken.models import Token

from customers import services as customers
from orders import selectors as order_selectors
from orders import services as order_services
from orders.models import Order
from saga.models import OutboxMessage


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


class Server:
    """One thread serves every request, so one database connection serves them all, as in a
    gunicorn sync worker."""

    def __init__(self, token: str):
        self.token = token
        self.httpd: WSGIServer = make_server("127.0.0.1", 0, WSGIHandler(), handler_class=_Quiet)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        try:
            self.httpd.serve_forever(poll_interval=0.05)
        finally:
            connections.close_all()  # this thread's connection

    def request(self, method: str, path: str, body: object = None, **headers: str) -> tuple[int, dict, dict]:
        client = http.client.HTTPConnection("127.0.0.1", self.httpd.server_port, timeout=30)
        payload = None if body is None else json.dumps(body)
        headers = {"Authorization": f"Token {self.token}", "Content-Type": "application/json", **headers}
        client.request(method, path, body=payload, headers=headers)
        response = client.getresponse()
        raw = response.read()
        client.close()
        content_type = response.getheader("Content-Type", "")
        assert content_type.startswith("application/json"), (response.status, raw[:300])
        return response.status, (json.loads(raw) if raw else {}), dict(response.getheaders())

    def stop(self) -> None:
        self.httpd.shutdown()
        self.thread.join(timeout=10)
        self.httpd.server_close()


def server_backends() -> list[int]:
    """Backends connected to the test database, but this test's own."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return [pid for (pid,) in cursor.fetchall()]


def terminate(pids: list[int]) -> None:
    """pg_terminate_backend from another connection, and wait until they are gone."""
    with connection.cursor() as cursor:
        for pid in pids:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    deadline = time.monotonic() + 10
    while set(pids) & set(server_backends()):
        assert time.monotonic() < deadline, "backends not terminated"
        time.sleep(0.02)


def terminate_own_backend() -> None:
    """From inside the server thread: have its own backend terminated by another connection."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    import psycopg2

    other = psycopg2.connect(**connection.get_connection_params())
    try:
        other.autocommit = True
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
            while True:
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
                if cursor.fetchone()[0] == 0:
                    break
                time.sleep(0.02)
    finally:
        other.close()


@pytest.fixture
def server(transactional_db) -> Iterator[Server]:
    user = get_user_model().objects.create_superuser("ops", "ops@example.com", "pw")
    running = Server(Token.objects.create(user=user).key)
    yield running
    running.stop()


@pytest.fixture
def ada(transactional_db):
    return customers.customer_create(name="Ada", email="ada@example.com", balance=Decimal("500.00"))


def test_a_connection_terminated_between_requests_is_replaced(server, ada):
    assert server.request("GET", f"/api/customers/{ada.pk}")[0] == 200
    backends = server_backends()
    assert backends, "the server keeps its connection between requests"
    terminate(backends)
    for _ in range(3):
        assert server.request("GET", f"/api/customers/{ada.pk}")[0] == 200
    assert not set(backends) & set(server_backends())


def wrap(monkeypatch, owner: object, name: str, before: Callable[[], None]) -> None:
    """Run `before` (once) ahead of owner.name."""
    original = getattr(owner, name)
    done = []

    def wrapped(*args: object, **kwargs: object) -> object:
        if not done:
            done.append(True)
            before()
        return original(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapped)


def test_an_order_placed_before_its_connection_died_answers_202(server, ada, monkeypatch):
    # The order commits; its connection dies before the view reads it back for the answer.
    wrap(monkeypatch, order_selectors, "order_get", terminate_own_backend)
    status, body, headers = server.request("POST", "/api/orders", {"customer_id": str(ada.pk), "amount": "10.00"})
    assert status == 202, body
    assert body["status"] == "PENDING" and headers["Location"].endswith(f"/api/orders/{body['id']}")
    assert Order.objects.filter(pk=body["id"]).exists()
    assert server.request("GET", f"/api/orders/{body['id']}")[0] == 200


def test_a_cancel_done_before_its_connection_died_answers_202(server, ada, monkeypatch):
    status, order, _ = server.request("POST", "/api/orders", {"customer_id": str(ada.pk), "amount": "10.00"})
    assert status == 202
    wrap(monkeypatch, order_selectors, "order_get", terminate_own_backend)
    status, body, _ = server.request("POST", f"/api/orders/{order['id']}/cancel")
    assert status == 202, body
    assert body["id"] == order["id"]
    # It did happen: a second cancel finds the order rolling back.
    assert server.request("POST", f"/api/orders/{order['id']}/cancel")[0] == 409


def test_a_connection_dying_before_the_commit_is_a_503_and_changes_nothing(server, ada, monkeypatch):
    outbox = OutboxMessage.objects.count()
    wrap(monkeypatch, order_services, "order_place", terminate_own_backend)
    status, body, headers = server.request("POST", "/api/orders", {"customer_id": str(ada.pk), "amount": "10.00"})
    assert status == 503, body
    assert body["code"] == "database_unavailable" and body["detail"]
    assert int(headers["Retry-After"]) >= 1
    assert Order.objects.count() == 0 and OutboxMessage.objects.count() == outbox
    # The client's retry gets a new connection.
    assert server.request("POST", "/api/orders", {"customer_id": str(ada.pk), "amount": "10.00"})[0] == 202


def test_a_database_really_away_is_a_503_with_retry_after_then_recovers(server, ada):
    assert server.request("GET", "/api/customers")[0] == 200
    real_port = connection.settings_dict["PORT"]
    terminate(server_backends())
    # ... and new connections are refused. (The server thread reads the same settings dict; this
    # thread keeps the connection it has.)
    connection.settings_dict["PORT"] = "1"
    try:
        for _ in range(2):
            status, body, headers = server.request("GET", "/api/customers")
            assert status == 503 and body["code"] == "database_unavailable"
            assert headers["Retry-After"] == "1"
    finally:
        connection.settings_dict["PORT"] = real_port
    assert server.request("GET", "/api/customers")[0] == 200
