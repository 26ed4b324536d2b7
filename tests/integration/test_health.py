"""GET /api/health counts a Celery worker in: not ok until a real worker process consumes the
shop's queue, and not ok again once it has stopped."""

import pytest
from rest_framework.test import APIClient

from .conftest import wait_until

pytestmark = pytest.mark.worker


def health() -> tuple[int, dict]:
    response = APIClient().get("/api/health")  # no credentials: health is public
    return response.status_code, response.json()


def test_health_waits_for_a_live_worker(start_worker):
    status, body = health()
    assert status == 503
    assert body["status"] == "degraded" and "no live worker" in body["worker"]
    assert (body["database"], body["broker"], body["kafka"]) == ("ok", "ok", "ok")

    worker = start_worker()
    wait_until(lambda: health()[0] == 200, timeout=60, what="health to see the worker")
    assert health() == (
        200,
        {"status": "ok", "database": "ok", "broker": "ok", "kafka": "ok", "worker": "ok", "outbox_lag_seconds": 0.0},
    )

    worker.stop()  # a worker that stops says so: health need not wait for its heartbeat to age
    status, body = health()
    assert status == 503 and "no live worker" in body["worker"]
