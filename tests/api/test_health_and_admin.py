"""Health over real PostgreSQL, Redis and the Kafka-compatible broker (with a worker: tests/integration/
test_health.py); demo data; the admin."""

import socket
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import Client, override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from customers import selectors as customers
from inventory import selectors as inventory
from saga.messaging import publish
from saga.models import OutboxMessage


def test_health_degrades_when_the_outbox_lags(db, settings):
    publish(type="order.created", key="k", payload={})
    OutboxMessage.objects.update(created_at=timezone.now() - timedelta(seconds=120))
    settings.OUTBOX_LAG_DEGRADED_SECONDS = 60
    response = APIClient().get("/api/health")
    assert response.status_code == 503
    body = response.json()
    assert body["outbox_lag_seconds"] >= 120 and body["outbox"].startswith("error")


@override_settings(CELERY_BROKER_URL="redis://127.0.0.1:1/0")
def test_health_names_the_part_that_is_down(db):
    response = APIClient().get("/api/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "degraded" and body["broker"].startswith("error") and body["database"] == "ok"


def test_seed_demo_is_safe_to_run_twice(db, capsys):
    call_command("seed_demo")
    first = capsys.readouterr().out
    call_command("seed_demo")
    second = capsys.readouterr().out
    token = first.strip().splitlines()[-1].removeprefix("Demo API token: ")
    assert second.strip().splitlines()[-1] == f"Demo API token: {token}"
    assert customers.customer_list().count() == 3 and inventory.product_list().count() == 3
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/products").json()["count"] == 3


@pytest.mark.parametrize(
    "page",
    [
        "/admin/customers/customer/",
        "/admin/inventory/product/",
        "/admin/orders/order/",
        "/admin/customers/customer/?q=Ada",
        "/admin/orders/order/?status__exact=PENDING",
    ],
)
def test_admin_lists_show_the_demo_data(db, page):
    call_command("seed_demo")
    client = Client()
    assert client.login(username="demo", password="demo")
    response = client.get(page)
    assert response.status_code == 200
    if "customer" in page:
        assert b"Ada Lovelace" in response.content


def test_health_answers_quickly_when_redis_freezes(db, settings):
    # A server that takes connections and never answers: what a frozen Redis looks like to a client.
    with socket.create_server(("127.0.0.1", 0)) as frozen:
        settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{frozen.getsockname()[1]}/0"
        began = time.monotonic()
        response = APIClient().get("/api/health")
        took = time.monotonic() - began
    assert response.status_code == 503
    body = response.json()
    assert body["broker"].startswith("error") and body["worker"].startswith("error") and body["database"] == "ok"
    assert took < 3, f"health took {took:.1f} s"


@override_settings(KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1")
def test_health_reports_kafka_down(db):
    response = APIClient().get("/api/health")
    assert response.status_code == 503 and response.json()["kafka"].startswith("error")
