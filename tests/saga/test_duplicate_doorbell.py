"""Two doorbells for one saga, taken at once by two workers (a redelivery, the sweeper's ring
beside the first one): the second advancer waits for the saga's row while the first runs the step,
and runs the step again once the first attempt's transaction rolls back, before the first records
its failure. Every attempt that ran is in the history and counts against the step."""

import threading
from uuid import UUID

from django.db import connection

from saga.models import SagaInstance, SagaStatus, SagaStep
from saga.orchestration import engine
from saga.testing.harness import InjectedError
from tests.conftest import wait_for

from .conftest import order_state, place


def _someone_waits_for_a_row_lock() -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")  # asked inside a transaction: see now, not its start
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
        return cursor.fetchone()[0] > 0


class SecondDoorbellDuringStep:
    """Faults in `step`'s action. Its first attempt rings a second doorbell (another worker, on its
    own connection) and goes on once that worker waits for the saga's row; the first worker records
    its outcome only once the second runs the step (the row is the second's), and the second goes
    on once the first waits for the row. Each attempt fails, unless its number is in `succeed`."""

    def __init__(self, step: str, saga_id: UUID, runtime, monkeypatch, succeed: tuple[int, ...] = ()):
        self.step, self.saga_id, self.runtime, self.succeed = step, saga_id, runtime, succeed
        self.calls = 0
        self.second: threading.Thread | None = None
        record_failure = engine.advancing.record_failure

        def after_the_second_takes_the_row(*args, **kwargs):
            wait_for(lambda: self.calls >= 2, timeout=10, what="the second advancer to run the step")
            return record_failure(*args, **kwargs)

        monkeypatch.setattr(engine.advancing, "record_failure", after_the_second_takes_the_row)

    def before(self, step, kind, ctx):
        if (step, kind) != (self.step, "action"):
            return None
        self.calls += 1
        if self.calls == 1:
            self.second = threading.Thread(target=self._ring_again)
            self.second.start()
        if self.calls <= 2:
            wait_for(_someone_waits_for_a_row_lock, timeout=10, what="the other advancer to wait for the row")
        if self.calls in self.succeed:
            return None
        raise InjectedError(f"attempt {self.calls} of {step} failed")

    def _ring_again(self) -> None:
        try:
            engine.advance(self.saga_id, self.runtime)
        finally:
            connection.close()


def _attempts(saga_id: UUID, step: str) -> list[tuple[int, str]]:
    rows = SagaStep.objects.filter(saga_id=saga_id, name=step, kind="action").order_by("id")
    return list(rows.values_list("attempt", "status"))


def test_an_attempt_run_by_a_duplicate_doorbell_is_recorded_and_counts(harness, shop, transactional_db, monkeypatch):
    customer, product = shop
    order = place(customer.pk, product, 1)
    racing = SecondDoorbellDuringStep("reserve_stock", order.saga_id, harness.runtime, monkeypatch)
    harness.runtime.faults = racing
    engine.advance(order.saga_id, harness.runtime)
    racing.second.join(timeout=20)
    assert racing.calls == 2
    assert _attempts(order.saga_id, "reserve_stock") == [(1, "FAILED"), (2, "FAILED")]
    assert SagaInstance.objects.get(pk=order.saga_id).attempts == 2

    # The policy allows three attempts: the third is the last, whoever ran the first two.
    saga = harness.run(order.saga_id)
    assert racing.calls == 3
    assert _attempts(order.saga_id, "reserve_stock") == [(1, "FAILED"), (2, "FAILED"), (3, "FAILED")]
    assert saga.status == SagaStatus.COMPENSATED
    assert order_state(order) == ("REJECTED", "OUT_OF_STOCK")


def test_a_failed_attempt_overtaken_by_a_duplicate_doorbells_success_is_still_in_the_history(
    harness, shop, transactional_db, monkeypatch
):
    customer, product = shop
    order = place(customer.pk, product, 1)
    racing = SecondDoorbellDuringStep("reserve_stock", order.saga_id, harness.runtime, monkeypatch, succeed=(2,))
    harness.runtime.faults = racing
    engine.advance(order.saga_id, harness.runtime)
    racing.second.join(timeout=20)
    history = _attempts(order.saga_id, "reserve_stock")
    assert sorted(status for _, status in history) == ["FAILED", "SUCCEEDED"]
    failed = SagaStep.objects.get(saga_id=order.saga_id, name="reserve_stock", status="FAILED")
    assert "attempt 1 of reserve_stock failed" in failed.error
    assert harness.run(order.saga_id).status == SagaStatus.COMPLETED
    assert order_state(order) == ("CONFIRMED", None)
