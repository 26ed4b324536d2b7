"""The engine's promises after the speed work (issue 19): a database blip is not a crash, giving
up never invents a reason, and after the pivot a saga only goes forward, for as long as it takes."""

import contextlib
import logging
from decimal import Decimal

import pytest
from django.db import connection

from saga.core.connections import CONNECTION_ERRORS
from saga.messaging.models import OutboxMessage
from saga.models import SagaInstance, SagaStatus, SagaStep
from saga.operator.metrics import scrape
from saga.orchestration import engine
from tests.tasks.test_dead_connections import terminate_own_backend

from .conftest import die_mid_step, funds, order_state, place, stock

CAPTURE = "capture_payment"
AFTER_THE_PIVOT = (CAPTURE, "consume_funds", "commit_stock")


def _reasons_announced(order) -> set[str]:
    payloads = OutboxMessage.objects.filter(aggregate_id=str(order.pk), type__startswith="order.")
    return {message.payload.get("reason") for message in payloads if "reason" in message.payload}


# --- giving up never invents a reason -------------------------------------------------------


def test_crashes_at_the_pivot_stop_the_saga_for_an_operator_without_rejecting_the_order(harness, shop):
    customer, product = shop
    order = place(customer.pk, product, 1)
    harness.raise_in("confirm_order", RuntimeError("database hiccup"))
    engine.advance(order.saga_id, harness.runtime)  # reserve, hold, authorize, then confirm backs off
    for _ in range(engine.MAX_CRASHES):
        die_mid_step(harness, order.saga_id)
    saga = harness.run(order.saga_id)
    assert (saga.status, saga.current_step) == (SagaStatus.FAILED, "confirm_order")
    assert f"died {engine.MAX_CRASHES} times" in saga.error
    assert order_state(order) == ("PENDING", None)  # not REJECTED with an empty reason
    assert "" not in _reasons_announced(order)
    # Nothing was undone: the operator decides (retry goes forward).
    assert stock(product) == (5, 1) and funds(customer) == (Decimal("100.00"), Decimal("10.00"))
    engine.retry(order.saga_id, harness.runtime)
    assert harness.run(order.saga_id).status == SagaStatus.COMPLETED
    assert order_state(order) == ("CONFIRMED", None)
    assert stock(product) == (4, 0) and funds(customer) == (Decimal("90.00"), Decimal("0.00"))


# --- after the pivot, only forward ----------------------------------------------------------


@pytest.mark.parametrize("step", AFTER_THE_PIVOT)
def test_a_step_failing_past_the_deadline_is_retried_until_it_succeeds(step, harness, shop, settings):
    customer, product = shop
    order = place(customer.pk, product, 1)
    harness.raise_in(step, RuntimeError("provider down"), times=60)
    engine.advance(order.saga_id, harness.runtime)
    day_and_window = settings.SHOP_ACCEPTANCE_TIMEOUT + 24 * 3600
    harness.clock.advance(day_and_window + 3600)  # the provider is down for longer than the deadline
    saga = harness.run(order.saga_id)
    assert saga.status == SagaStatus.COMPLETED, saga.error
    assert order_state(order) == ("CONFIRMED", None)
    assert stock(product) == (4, 0) and funds(customer) == (Decimal("90.00"), Decimal("0.00"))
    failed = SagaStep.objects.filter(saga_id=order.saga_id, name=step, status=SagaStep.Status.FAILED).count()
    assert failed == 60


def test_a_long_retry_after_the_pivot_raises_an_alert_not_a_failure(harness, shop, settings, caplog, admin_client):
    settings.SAGA_LONG_RETRY_ATTEMPTS = 5
    customer, product = shop
    order = place(customer.pk, product, 1)
    harness.raise_in(CAPTURE, RuntimeError("provider down"), times=1000)
    with caplog.at_level(logging.ERROR, logger="saga"):
        for _ in range(6):
            engine.advance(order.saga_id, harness.runtime)
            retry_at = SagaInstance.objects.get(pk=order.saga_id).retry_at
            harness.clock.advance((retry_at - harness.clock.now()).total_seconds())
    saga = SagaInstance.objects.get(pk=order.saga_id)
    assert saga.status == SagaStatus.STARTED and saga.attempts >= 5
    alerts = [r for r in caplog.records if "still failing" in r.getMessage()]
    assert len(alerts) == 1 and alerts[0].levelno == logging.ERROR
    assert CAPTURE in alerts[0].getMessage()
    assert b"saga_sagas_retrying_long 1.0" in scrape()
    dashboard = admin_client.get("/admin/").content.decode()
    assert "1 retrying a step for long" in dashboard and "retrying one step 5 times or more" in dashboard


# --- a database blip is not a crash ---------------------------------------------------------


def _terminating_in(step: str, times: int, monkeypatch) -> list[int]:
    """The step's connection is terminated in the middle of the step, `times` times."""
    blips: list[int] = []
    real_invoke = engine.attempt._invoke

    def invoke(s, kind, ctx, runtime):
        if s.name == step and len(blips) < times:
            blips.append(1)
            terminate_own_backend()
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")  # the step's next statement meets the dead connection
        return real_invoke(s, kind, ctx, runtime)

    monkeypatch.setattr(engine.attempt, "_invoke", invoke)
    return blips


@pytest.mark.parametrize("step", ["reserve_stock", "confirm_order"])
def test_blips_in_a_careful_step_are_retried_without_counting_a_crash(
    step, harness, shop, monkeypatch, transactional_db
):
    customer, product = shop
    order = place(customer.pk, product, 1)
    blips = _terminating_in(step, 5, monkeypatch)
    for _ in range(6):  # as advance_saga does: a lost connection rings the doorbell again
        with contextlib.suppress(*CONNECTION_ERRORS):
            engine.advance(order.saga_id, harness.runtime, suspect=True)
    assert len(blips) == 5
    saga = harness.run(order.saga_id)
    assert saga.status == SagaStatus.COMPLETED, saga.error
    assert order_state(order) == ("CONFIRMED", None)
    rows = SagaStep.objects.filter(saga_id=order.saga_id, name=step)
    assert not rows.filter(status=SagaStep.Status.CRASHED).exists()
    assert list(rows.values_list("status", flat=True)) == [SagaStep.Status.SUCCEEDED]


def test_a_claim_whose_worker_is_gone_still_counts_as_a_crash(harness, shop):
    customer, product = shop
    order = place(customer.pk, product, 1)
    die_mid_step(harness, order.saga_id)
    SagaStep.objects.filter(saga_id=order.saga_id, status=SagaStep.Status.RUNNING).update(worker="elsewhere:1")
    harness.run(order.saga_id)
    statuses = list(
        SagaStep.objects.filter(saga_id=order.saga_id, name="reserve_stock").values_list("status", flat=True)
    )
    assert statuses == [SagaStep.Status.CRASHED, SagaStep.Status.SUCCEEDED]


# --- a rewind does not make the saga forget what it did -------------------------------------


def test_a_roll_back_after_a_rewind_undoes_the_steps_done_before_it(harness, shop):
    customer, product = shop
    order = place(customer.pk, product, 1, fulfillment="delivery")
    assert harness.run(order.saga_id).status == SagaStatus.WAITING  # stock reserved, funds held
    engine.rewind(order.saga_id, "reserve_stock", harness.runtime)
    assert harness.cancel(order.saga_id, "CANCELLED_BY_CUSTOMER")  # before the saga is back at its wait
    saga = harness.run(order.saga_id)
    assert (saga.status, saga.reason) == (SagaStatus.COMPENSATED, "CANCELLED_BY_CUSTOMER")
    assert stock(product) == (5, 0) and funds(customer) == (Decimal("100.00"), Decimal("0.00"))
    compensated = SagaStep.objects.filter(saga_id=order.saga_id, kind=SagaStep.Kind.COMPENSATION)
    assert set(compensated.values_list("name", flat=True)) == {"authorize_payment", "hold_funds", "reserve_stock"}
