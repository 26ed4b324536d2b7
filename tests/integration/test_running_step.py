"""The step a real worker is running, seen from another process (the web): the worker marks it in
the shared Redis, the API reads it there."""

import uuid
from decimal import Decimal

import pytest

from customers import services as customers

from .conftest import wait_until

pytestmark = pytest.mark.worker


def test_the_api_shows_the_step_a_worker_process_is_running(start_worker, api):
    start_worker(SAGA_FAULTS='{"authorize_payment": {"delay": 3}}')  # a slow payment provider
    customer = customers.customer_create(name=f"c-{uuid.uuid4().hex[:6]}", balance=Decimal("100.00"))
    order = api.post("/api/orders", {"customer_id": str(customer.pk), "amount": "10.00"}, format="json").json()
    saga_url = f"/api/sagas/{order['saga_id']}"

    def running() -> dict | None:
        return api.get(saga_url).json()["running"]

    shown = wait_until(running, timeout=30, what="the API to show the worker's running step")
    assert (shown["step"], shown["kind"], shown["attempt"], shown["stuck"]) == ("authorize_payment", "action", 1, False)
    assert api.get(saga_url).json()["current_step"] == "authorize_payment"
    wait_until(lambda: api.get(saga_url).json()["status"] == "COMPLETED", timeout=30, what="the saga to complete")
    assert running() is None
