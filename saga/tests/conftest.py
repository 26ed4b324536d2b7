import time
from collections.abc import Callable

import pytest

from saga.testing.harness import SagaHarness
from saga.tests.toyshop.models import Reservation, Toy
from saga.tests.toyshop.saga import TOY_ORDER


@pytest.fixture
def harness() -> SagaHarness:
    return SagaHarness(TOY_ORDER)


@pytest.fixture
def toys(db) -> Toy:
    """Five teddies in the toy box."""
    return Toy.objects.create(sku="TEDDY", stock=5)


def order_data(order_id, *, quantity: int = 2, delivery: bool = False, sku: str = "TEDDY") -> dict:
    return {"order_id": str(order_id), "sku": sku, "quantity": quantity, "delivery": delivery}


def stock(sku: str = "TEDDY") -> int:
    return Toy.objects.get(pk=sku).stock


def reservation(order_id) -> str | None:
    return Reservation.objects.filter(pk=order_id).values_list("status", flat=True).first()


def wait_for(condition: Callable[[], object], *, timeout: float = 60, what: str = "condition") -> object:
    """Poll `condition` until it is truthy; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
