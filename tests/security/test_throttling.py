"""Placing orders (POST /api/orders) is rate-limited per user, that is per token: beyond the rate a
clear 429 in the API's JSON shape with Retry-After, and no order. Reads and other actions are free."""

import logging
import os
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from common.throttling import ScopedCreateThrottle
from orders.models import Order
from tests.conftest import run_concurrently
from tests.error_shape import error_shape


@pytest.fixture
def rate(settings):
    """Set the order rate for this test (DRF reloads its settings when REST_FRAMEWORK changes)."""

    def set_rate(value: str | None) -> None:
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {"orders": value}}

    cache.clear()
    return set_rate


@pytest.fixture
def clock(monkeypatch):
    now = [300 * 3600.0]  # at the start of an hour, so of a minute and a second: where windows start
    monkeypatch.setattr(ScopedCreateThrottle, "timer", staticmethod(lambda: now[0]))
    return now


def token_client(name: str) -> APIClient:
    user = get_user_model().objects.create_superuser(name, f"{name}@example.com", None)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


def place(client: APIClient, customer_id: str | None = None, **headers: str):
    body = {"customer_id": customer_id or str(uuid.uuid4()), "amount": "1.00"}
    return client.post("/api/orders", body, format="json", **headers)


def test_beyond_the_rate_placing_is_429_with_retry_after_and_places_nothing(db, rate, clock):
    rate("3/min")
    clerk = token_client("clerk")
    assert [place(clerk).status_code for _ in range(3)] == [202, 202, 202]
    clock[0] += 15
    refused = place(clerk)
    body = error_shape(refused, 429, "throttled")
    assert "throttled" in body["detail"] and "45 seconds" in body["detail"]
    assert refused["Retry-After"] == "45"  # the rest of the minute
    assert Order.objects.count() == 3


def test_the_limit_lifts_when_the_window_ends(db, rate, clock):
    rate("2/s")
    clerk = token_client("clerk")
    assert [place(clerk).status_code for _ in range(3)] == [202, 202, 429]
    clock[0] += 1
    assert place(clerk).status_code == 202


def test_the_limit_is_per_token_and_counts_placing_only(db, rate, clock):
    rate("1/hour")
    clerk, other = token_client("clerk"), token_client("other")
    order = place(clerk).json()
    assert place(clerk).status_code == 429
    assert place(other).status_code == 202  # another token has its own count
    assert clerk.get("/api/orders").status_code == 200
    assert clerk.get(f"/api/orders/{order['id']}/status").status_code == 200
    assert clerk.post(f"/api/orders/{order['id']}/cancel").status_code in (202, 409)
    assert clerk.post("/api/customers", {"name": "x", "balance": "1.00"}, format="json").status_code == 201


def test_a_replay_with_the_same_idempotency_key_counts_too(db, rate, clock):
    # The throttle runs before the view: a client stuck in a retry loop is stopped as well.
    rate("2/min")
    clerk, customer_id = token_client("clerk"), str(uuid.uuid4())
    codes = [place(clerk, customer_id, HTTP_IDEMPOTENCY_KEY="again").status_code for _ in range(3)]
    assert codes == [202, 202, 429]


def test_no_rate_means_no_limit(db, rate):
    rate(None)
    clerk = token_client("clerk")
    assert {place(clerk).status_code for _ in range(5)} == {202}


@pytest.mark.parametrize("backend", ["locmem", "redis"])
@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_cannot_slip_past_the_limit(rate, clock, settings, backend):
    """Requests at the same moment from one token (as from several gunicorn workers sharing Redis
    in production) are counted atomically: exactly the rate gets through."""
    if backend == "redis":
        settings.CACHES = {
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": os.environ["REDIS_URL"],
                "KEY_PREFIX": f"throttle-test-{uuid.uuid4()}",
            }
        }
    rate("5/min")
    user = get_user_model().objects.create_superuser("burst", "burst@example.com", None)
    key = Token.objects.create(user=user).key

    def request():
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return place(client).status_code

    codes = run_concurrently([request] * 12)
    assert sorted(codes) == [202] * 5 + [429] * 7
    assert Order.objects.count() == 5


def test_an_unreachable_cache_lets_orders_through_and_says_so(db, rate, settings, caplog):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
        }
    }
    rate("1/min")
    clerk = token_client("clerk")
    with caplog.at_level(logging.WARNING, logger="common.throttling"):
        assert [place(clerk).status_code for _ in range(2)] == [202, 202]
    assert "rate limit orders not applied for 5 s" in caplog.text
