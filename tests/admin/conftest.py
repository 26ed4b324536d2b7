"""Sagas in every state, made by the place-order saga itself (through the harness), and the
people who look at them: a superuser, a staff user who may only view, an operator."""

import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db.models import F, Q
from django.test import Client
from django.utils import timezone

from customers import services as customers
from inventory import services as inventory
from orders import services as orders
from orders.models import Order
from orders.saga import PLACE_ORDER
from saga.messaging.inbox import consume
from saga.models import DeadLetter, OutboxMessage, SagaInstance, SagaStatus, SagaStep
from saga.orchestration import engine
from saga.testing.harness import ManualClock, SagaHarness

VIEW_ALL = [
    "view_sagainstance",
    "view_outboxmessage",
    "view_inboxmessage",
    "view_deadletter",
    "view_processedcommand",
    "view_operatoraction",
    "view_order",
    "view_customer",
    "view_product",
]


class WallClock(ManualClock):
    """The harness on the real clock, so the pages show the times a real run would."""

    def now(self):
        return timezone.now()


@pytest.fixture
def harness() -> SagaHarness:
    harness = SagaHarness(PLACE_ORDER)
    harness.clock = harness.runtime.clock = harness.faults.clock = WallClock()
    return harness


def place(customer_id, product=None, quantity=1, *, amount=None, fulfillment="pickup"):
    items = [orders.ItemRequest(quantity=quantity, product_id=product.pk)] if product else []
    return orders.order_place(customer_id=customer_id, items=items, amount=amount, fulfillment=fulfillment).order


def _skip_backoff(saga_id) -> None:
    SagaInstance.objects.filter(pk=saga_id).update(retry_at=None)


def fail_after_pivot(harness: SagaHarness, order) -> SagaInstance:
    """The order is confirmed, then its capture fails once and kills its worker five times (each
    attempt claimed, as a worker would, and never run): the saga stops FAILED after its pivot."""
    harness.raise_in("capture_payment", RuntimeError("payment provider timed out"))
    engine.advance(order.saga_id, harness.runtime)
    for _ in range(engine.MAX_CRASHES):
        while not isinstance(engine.advancing.claim(order.saga_id, harness.runtime), engine.Claim):
            _skip_backoff(order.saga_id)
    _skip_backoff(order.saga_id)
    engine.advance(order.saga_id, harness.runtime)
    saga = SagaInstance.objects.get(pk=order.saga_id)
    assert saga.status == SagaStatus.FAILED
    return saga


def backdate(saga: SagaInstance, minutes: float) -> SagaInstance:
    """Move the saga, its attempts, its order and its messages `minutes` into the past."""
    delta = timedelta(minutes=minutes)
    fields = ("created_at", "updated_at", "wake_at", "retry_at", "timer_at", "deadline")
    SagaInstance.objects.filter(pk=saga.pk).update(**{f: F(f) - delta for f in fields})
    SagaStep.objects.filter(saga=saga).update(started_at=F("started_at") - delta, finished_at=F("finished_at") - delta)
    mine = Q(correlation_id=saga.pk) | Q(aggregate_id=str(saga.aggregate_id))
    OutboxMessage.objects.filter(mine).update(created_at=F("created_at") - delta, sent_at=F("sent_at") - delta)
    order = Order.objects.filter(pk=saga.aggregate_id)
    order.update(created_at=F("created_at") - delta, updated_at=F("updated_at") - delta)
    return SagaInstance.objects.get(pk=saga.pk)


@pytest.fixture
def shop(db):
    customer = customers.customer_create(name="Ada Lovelace", email="ada@example.com", balance=Decimal("500.00"))
    product = inventory.product_create(sku="WIDGET", name="Widget", price=Decimal("25.00"), stock=100)
    return customer, product


@pytest.fixture
def sagas(shop, harness) -> dict[str, SagaInstance]:
    """One saga of each kind an operator meets, by name, started over the last two hours."""
    customer, product = shop
    made = {}
    done = place(customer.pk, product, 2)
    made["completed"] = backdate(harness.run(done.saga_id), 95)
    refused = place(customer.pk, amount=Decimal("9999.00"))
    made["compensated"] = backdate(harness.run(refused.saga_id), 48)
    made["failed"] = backdate(fail_after_pivot(harness, place(customer.pk, product, 3)), 26)
    waiting = place(customer.pk, product, 1, fulfillment="delivery")
    made["waiting"] = backdate(harness.run(waiting.saga_id), 12)
    stuck = place(customer.pk, amount=Decimal("5.00"))  # its doorbell was lost: nobody moved it
    made["stuck"] = backdate(SagaInstance.objects.get(pk=stuck.saga_id), 7)
    OutboxMessage.objects.filter(sent_at__isnull=True).update(sent_at=F("created_at") + timedelta(milliseconds=40))
    return made


@pytest.fixture
def dead_letter(db):
    consume("fulfillment_events", b'{"id": "not json at all', partition=1, offset=42)
    return DeadLetter.objects.get()


def user_with(username: str, *codenames: str, staff: bool = True):
    user = get_user_model().objects.create_user(username, password="pw", is_staff=staff)
    user.user_permissions.set(Permission.objects.filter(codename__in=codenames))
    return user


@pytest.fixture
def viewer(db):
    """Staff who may look at everything and change nothing."""
    return user_with("viewer", *VIEW_ALL)


@pytest.fixture
def operator(db):
    """Staff who may operate sagas and dead letters."""
    return user_with("operator", *VIEW_ALL, "change_sagainstance", "change_deadletter")


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def unique() -> str:
    return uuid.uuid4().hex
