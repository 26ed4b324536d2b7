"""Upgrading the place-order saga from version 1 to version 2 (issue 21): the sagas yesterday's code
started under v1 (its newest version then) finish under v1 once today's code, whose newest is v2,
runs them: on v1's steps (authorize_payment holds funds and authorizes, capture_payment_and_commit_stock
moves money and goods), wherever the upgrade found them: not yet run, waiting for the courier,
retrying after the pivot, waiting for a remote payments reply. New orders start under v2. Money,
stock and payments end right either way."""

from decimal import Decimal

import pytest

from orders.saga import PLACE_ORDER
from orders.saga_v1 import PLACE_ORDER_V1
from payments import selectors as payments
from saga import services as saga_services
from saga.models import SagaInstance, SagaStatus
from saga.orchestration import engine, registry
from saga.orchestration.registry import Registry
from saga.testing.harness import SagaHarness

from .conftest import funds, order_state, place, stock
from .test_remote_participant import sent_command, serve

ACCEPTED = "fulfillment.accepted"
V1_STEPS = [step.name for step in PLACE_ORDER_V1.steps]
V2_STEPS = [step.name for step in PLACE_ORDER.steps]


def deploy(monkeypatch, *definitions) -> None:
    """A process running code that registers `definitions`: a registry of its own, read where the
    shop starts a saga (its newest version) and where the engine moves one (the version it has)."""
    deployed = Registry()
    for definition in definitions:
        deployed.register(definition)
    for module in (saga_services, engine.steps, registry):
        monkeypatch.setattr(module, "definitions", deployed)


def yesterday(monkeypatch) -> None:
    deploy(monkeypatch, PLACE_ORDER_V1)


def today(monkeypatch) -> None:
    deploy(monkeypatch, PLACE_ORDER_V1, PLACE_ORDER)  # as orders/apps.py registers them


def steps_run(harness: SagaHarness, saga_id) -> list[str]:
    """The steps whose action succeeded (a wait ended by its event among them), in order."""
    return [name for name, kind, status in harness.steps(saga_id) if (kind, status) == ("action", "SUCCEEDED")]


def test_version_1_keeps_its_steps():
    """Its sagas in flight are an index into these: they never change (a change is a new version)."""
    assert (PLACE_ORDER_V1.version, PLACE_ORDER.version) == (1, 2)
    assert V1_STEPS == [
        "reserve_stock",
        "authorize_payment",
        "await_acceptance",
        "confirm_order",
        "capture_payment_and_commit_stock",
    ]
    assert "hold_funds" in V2_STEPS and "capture_payment_and_commit_stock" not in V2_STEPS


def test_sagas_started_under_v1_finish_under_v1_after_the_upgrade(harness, shop, monkeypatch):
    customer, product = shop  # 100.00; 5 units at 10.00
    yesterday(monkeypatch)
    not_run = place(customer.pk, product, 1)  # placed, its doorbell not yet rung
    accepted = place(customer.pk, product, 1, fulfillment="delivery")
    cancelled = place(customer.pk, product, 1, fulfillment="delivery")
    retrying = place(customer.pk, product, 1)
    for order in (accepted, cancelled):
        assert harness.run(order.saga_id).status == SagaStatus.WAITING
    harness.raise_in("capture_payment_and_commit_stock", RuntimeError("provider down"))
    engine.advance(retrying.saga_id, harness.runtime)  # confirmed, then its v1-only step backs off
    saga = SagaInstance.objects.get(pk=retrying.saga_id)
    assert (saga.status, saga.current_step, saga.retry_at is not None) == (
        SagaStatus.STARTED,
        "capture_payment_and_commit_stock",
        True,
    )
    v1_sagas = [not_run, accepted, cancelled, retrying]
    assert {SagaInstance.objects.get(pk=o.saga_id).version for o in v1_sagas} == {1}
    # Held and reserved for the three that ran (the fourth has not started).
    assert funds(customer) == (Decimal("100.00"), Decimal("30.00")) and stock(product) == (5, 3)

    today(monkeypatch)
    new = place(customer.pk, product, 1)
    assert SagaInstance.objects.get(pk=new.saga_id).version == 2
    assert harness.signal(accepted.saga_id, ACCEPTED)
    assert harness.cancel(cancelled.saga_id, "CANCELLED_BY_CUSTOMER")
    harness.clock.advance(3600)  # past the retrying saga's backoff
    for order in (*v1_sagas, new):
        harness.run(order.saga_id)

    for order in (not_run, retrying, accepted):
        saga = SagaInstance.objects.get(pk=order.saga_id)
        assert (saga.status, saga.version) == (SagaStatus.COMPLETED, 1), order
        assert order_state(order) == ("CONFIRMED", None)
        assert payments.payment_get(order_id=order.pk).status == "CAPTURED"
    assert steps_run(harness, not_run.saga_id) == steps_run(harness, retrying.saga_id)
    assert steps_run(harness, not_run.saga_id) == [
        "reserve_stock",
        "authorize_payment",
        "confirm_order",
        "capture_payment_and_commit_stock",
    ]
    assert steps_run(harness, accepted.saga_id) == V1_STEPS
    saga = SagaInstance.objects.get(pk=cancelled.saga_id)
    assert (saga.status, saga.version, saga.reason) == (SagaStatus.COMPENSATED, 1, "CANCELLED_BY_CUSTOMER")
    undone = [name for name, kind, status in harness.steps(cancelled.saga_id) if kind == "compensation"]
    assert undone == ["authorize_payment", "reserve_stock"]  # v1's: the void and the funds' release in one
    assert order_state(cancelled) == ("CANCELLED", "CANCELLED_BY_CUSTOMER")
    assert payments.payment_get(order_id=cancelled.pk).status == "VOIDED"

    saga = SagaInstance.objects.get(pk=new.saga_id)
    assert (saga.status, saga.version) == (SagaStatus.COMPLETED, 2)
    assert steps_run(harness, new.saga_id) == [name for name in V2_STEPS if name != "await_acceptance"]
    # Four orders confirmed (three of v1, one of v2), one cancelled: nothing left held or reserved.
    assert funds(customer) == (Decimal("60.00"), Decimal("0.00"))
    assert stock(product) == (1, 0)


@pytest.mark.usefixtures("payments_remote")
def test_a_v1_saga_waiting_for_a_remote_payments_reply_finishes_under_v1(harness, shop, monkeypatch):
    customer, product = shop
    yesterday(monkeypatch)
    order = place(customer.pk, product, 2)
    saga = harness.run(order.saga_id)
    assert (saga.status, saga.version, saga.current_step) == (SagaStatus.WAITING, 1, "authorize_payment")
    assert sent_command(order.saga_id)[0] == "payment.authorize"
    # v1's step holds the funds and authorizes in one transaction: its hold waits with it.
    assert funds(customer) == (Decimal("100.00"), Decimal("0.00")) and stock(product) == (5, 2)

    today(monkeypatch)
    new = place(customer.pk, product, 1)
    serve(harness, order.saga_id)  # payments answers the command yesterday's code sent
    saga = harness.run(order.saga_id)
    assert (saga.status, saga.version, saga.current_step) == (
        SagaStatus.WAITING,
        1,
        "capture_payment_and_commit_stock",
    )
    assert sent_command(order.saga_id)[0] == "payment.capture"
    serve(harness, order.saga_id)
    saga = harness.run(order.saga_id)
    assert (saga.status, saga.version) == (SagaStatus.COMPLETED, 1)
    assert steps_run(harness, order.saga_id) == [
        "reserve_stock",
        "authorize_payment",
        "confirm_order",
        "capture_payment_and_commit_stock",
    ]
    assert order_state(order) == ("CONFIRMED", None)

    # The order placed after the upgrade: v2, its funds held by a step of their own before the call.
    saga = harness.run(new.saga_id)
    assert (saga.status, saga.version, saga.current_step) == (SagaStatus.WAITING, 2, "authorize_payment")
    assert funds(customer) == (Decimal("80.00"), Decimal("10.00"))
    serve(harness, new.saga_id)
    assert harness.run(new.saga_id).current_step == "capture_payment"
    serve(harness, new.saga_id)
    assert harness.run(new.saga_id).status == SagaStatus.COMPLETED
    assert steps_run(harness, new.saga_id) == [name for name in V2_STEPS if name != "await_acceptance"]
    assert order_state(new) == ("CONFIRMED", None)
    assert funds(customer) == (Decimal("70.00"), Decimal("0.00")) and stock(product) == (2, 0)


@pytest.fixture
def payments_remote(settings):
    settings.SAGA_REMOTE_PARTICIPANTS = ["payments"]
