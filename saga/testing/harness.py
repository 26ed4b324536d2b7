"""Run a saga definition synchronously in tests, with a clock you move and faults you inject.

    harness = SagaHarness(PLACE_ORDER)
    harness.raise_in("reserve_stock", times=2)          # transient errors, then success
    harness.refuse_in("authorize_payment", "PAYMENT_DECLINED")
    harness.hang_in("confirm_order")                    # runs past its timeout once
    saga = harness.run(harness.start(aggregate_id=order_id, data=PlaceOrderData(...)))
    assert saga.status == "COMPENSATED"

`run` advances the saga until it finishes or waits for an event, jumping the clock over backoffs;
`clock.advance(seconds)` then lets timers expire. Everything runs in the test's own database
transaction (pytest-django's `db` fixture): no Celery, no sleeping. For tests that read as
given / expect, see `scenario.py`, a layer over this harness.
"""

import random
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from django.utils import timezone as django_timezone

from saga.orchestration import engine
from saga.orchestration.definition import Refusal, SagaData, SagaDefinition, Step, StepContext
from saga.orchestration.models import TERMINAL, SagaInstance, SagaStatus
from saga.orchestration.runtime import Runtime, StepTimeout


class ManualClock:
    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or django_timezone.now()

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)


class InjectedError(RuntimeError):
    """Raised by an injected fault."""


@dataclass
class _Fault:
    times: int
    error: BaseException | None = None
    refusal: Refusal | None = None
    hang_seconds: float | None = None


class InjectedFaults:
    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self._faults: dict[tuple[str, str], list[_Fault]] = defaultdict(list)
        self.calls: list[tuple[str, str]] = []

    def add(self, step: str, kind: str, fault: _Fault) -> None:
        self._faults[(step, kind)].append(fault)

    def before(self, step: str, kind: str, ctx: StepContext[Any]) -> Refusal | None:
        self.calls.append((step, kind))
        queue = self._faults.get((step, kind))
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        if fault.hang_seconds is not None:
            self.clock.advance(fault.hang_seconds)
            raise StepTimeout(f"{step} hung for {fault.hang_seconds} s (injected)")
        if fault.error is not None:
            raise fault.error
        return fault.refusal


class SagaHarness:
    def __init__(self, definition: SagaDefinition[Any], *, seed: int = 0, stall_after: float = 30.0):
        self.definition = definition
        self.clock = ManualClock()
        self.faults = InjectedFaults(self.clock)
        self.scheduled: list[tuple[UUID, float]] = []
        self.runtime = Runtime(
            schedule=lambda saga_id, delay: self.scheduled.append((saga_id, delay)),
            clock=self.clock,
            faults=self.faults,
            rng=random.Random(seed),
            stall_after=stall_after,
        )

    # --- faults ---
    def raise_in(self, step: str, error: BaseException | None = None, *, times: int = 1, kind: str = "action") -> None:
        self.faults.add(step, kind, _Fault(times=times, error=error or InjectedError(f"injected into {step}")))

    def refuse_in(self, step: str, reason: str, *, times: int = 1) -> None:
        self.faults.add(step, "action", _Fault(times=times, refusal=Refusal(reason)))

    def hang_in(self, step: str, *, times: int = 1, kind: str = "action") -> None:
        timeout = next(s for s in self.definition.steps if isinstance(s, Step) and s.name == step).timeout or 60.0
        self.faults.add(step, kind, _Fault(times=times, hang_seconds=timeout + 1))

    # --- driving ---
    def start(self, *, data: dict[str, Any] | SagaData, aggregate_id: UUID | None = None) -> UUID:
        """Start a saga of the harness's definition with `data`, a dict or its data class."""
        stored = data if isinstance(data, dict) else data.to_data()
        saga = engine.start(self.definition, aggregate_id=aggregate_id or uuid4(), data=stored, runtime=self.runtime)
        return saga.id

    def run(self, saga_id: UUID, *, max_rounds: int = 1000) -> SagaInstance:
        """Advance until the saga is finished or waits for an event, skipping over backoffs."""
        for _ in range(max_rounds):
            engine.advance(saga_id, self.runtime)
            saga = SagaInstance.objects.get(pk=saga_id)
            if saga.status in TERMINAL or saga.status == SagaStatus.WAITING:
                return saga
            if saga.retry_at is None or saga.retry_at <= self.clock.now():
                return saga  # something outside the engine must happen first
            self.clock.advance((saga.retry_at - self.clock.now()).total_seconds())
        raise AssertionError(f"saga {saga_id} did not settle in {max_rounds} rounds")

    def signal(self, saga_id: UUID, event: str, payload: dict[str, Any] | None = None) -> bool:
        return engine.signal(saga_id, event, payload, self.runtime)

    def reply(self, saga_id: UUID, command_id: UUID, payload: dict[str, Any], *, ok: bool = True) -> bool:
        """Answer a remote participant's command, as its reply from Kafka would."""
        return engine.deliver_reply(saga_id, command_id, ok, payload, self.runtime)

    def cancel(self, saga_id: UUID, reason: str) -> bool:
        return engine.cancel(saga_id, reason, self.runtime)

    def steps(self, saga_id: UUID) -> list[tuple[str, str, str]]:
        """The history as (name, kind, status) rows, oldest first."""
        return list(SagaInstance.objects.get(pk=saga_id).steps.order_by("id").values_list("name", "kind", "status"))
