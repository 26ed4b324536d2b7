"""Moving the saga between states: on to a step (or back), into compensation, to a backoff, to its
end. Before its pivot a saga that fails for good or runs out of time rolls back; at or after the
pivot nothing is undone."""

import logging
from datetime import datetime, timedelta
from typing import Any

from saga.messaging import publish

from ..definition import SagaDefinition, Step, StepContext
from ..models import Direction, SagaInstance, SagaStatus, SagaStep
from ..runtime import Runtime
from .history import finish_running, record
from .row import save

log = logging.getLogger(__package__)  # one logger for the engine, whichever module writes

REACHED_KEY = "_reached"  # the furthest step a rewound saga had reached, kept in its data


def move(saga: SagaInstance, definition: SagaDefinition[Any], index: int, now: datetime, runtime: Runtime) -> None:
    saga.step_index = index
    if index > definition.pivot_index:
        saga.deadline = None  # it bounds the way to the pivot; after it the saga goes on until done
    saga.current_step = definition.steps[index].name if 0 <= index < len(definition.steps) else ""
    saga.attempts = saga.crashes = 0
    saga.retry_at = saga.timer_at = None
    if saga.direction == Direction.FORWARD:
        # Past the step that failed: its error is history (kept on its attempt's row). Rolling
        # back keeps it, as why the saga is compensating.
        saga.error = ""
    if saga.status == SagaStatus.WAITING:
        saga.status = SagaStatus.STARTED
    saga.wake_at = now + timedelta(seconds=runtime.stall_after)


def pass_over_skipped(
    saga: SagaInstance, definition: SagaDefinition, ctx: StepContext[Any], now: datetime, runtime: Runtime
) -> None:
    """Move past the steps ahead that do not apply to this saga, recording each as skipped."""
    steps = definition.steps
    while saga.step_index < len(steps) and not steps[saga.step_index].when(ctx):
        record(saga, steps[saga.step_index].name, SagaStep.Kind.ACTION, SagaStep.Status.SKIPPED, now)
        move(saga, definition, saga.step_index + 1, now, runtime)


def begin_compensation(
    saga: SagaInstance, definition: SagaDefinition, from_index: int, reason: str, error: str, runtime: Runtime
) -> None:
    """Undo every step up to and including `from_index`, or the furthest a rewound saga had
    reached: a refused or failed step may have done part of its work, and compensations are
    idempotent (undoing nothing is a no-op)."""
    now = runtime.clock.now()
    finish_running(saga, SagaStep.Status.ABANDONED, now)
    saga.status = SagaStatus.COMPENSATING
    saga.direction = Direction.BACKWARD
    saga.step_index = min(max(from_index, saga.data.get(REACHED_KEY, -1)), len(definition.steps) - 1)
    saga.current_step = definition.steps[saga.step_index].name
    saga.attempts = saga.crashes = 0
    saga.reason = reason
    saga.error = error
    saga.retry_at = saga.timer_at = None
    saga.wake_at = now + timedelta(seconds=runtime.stall_after)
    announce(saga, "saga.compensating", step=saga.current_step, reason=reason)


def deadline_passed(saga: SagaInstance, definition: SagaDefinition, runtime: Runtime) -> bool:
    """Before its pivot, a saga out of time rolls back with the reason of the step it is at."""
    finish_running(saga, SagaStep.Status.ABANDONED, runtime.clock.now())
    step = definition.steps[saga.step_index]
    begin_compensation(saga, definition, saga.step_index, step.failure_reason, "the saga's deadline passed", runtime)
    save(saga)
    return True


def give_up(
    saga: SagaInstance, definition: SagaDefinition, step: Step, kind: str, error: str, runtime: Runtime
) -> bool:
    """A step failed for good: before the pivot, roll back with the step's reason; at or after it
    (where nothing is undone), stop for an operator rather than give a reason that did not happen."""
    if kind == SagaStep.Kind.ACTION and saga.step_index < definition.pivot_index:
        begin_compensation(saga, definition, saga.step_index, step.failure_reason, error, runtime)
        save(saga)
        return True
    saga.error = error
    end(saga, SagaStatus.FAILED)
    log.error("saga %s FAILED at %s (%s): %s", saga.id, step.name, kind, error)
    return False


def back_off(saga: SagaInstance, delay: float, runtime: Runtime) -> None:
    saga.retry_at = runtime.clock.now() + timedelta(seconds=delay)
    saga.wake_at = due(saga, saga.retry_at)
    save(saga)
    runtime.schedule(saga.id, delay)


def due(saga: SagaInstance, at: datetime) -> datetime:
    """When the sweeper must look: `at`, or the saga's deadline if that comes first."""
    return min(at, saga.deadline) if saga.deadline else at


def end(saga: SagaInstance, status: str) -> None:
    saga.status = status
    saga.wake_at = saga.retry_at = saga.timer_at = None
    if status != SagaStatus.FAILED:
        saga.current_step = ""
    save(saga)
    log.info("saga %s %s", saga.type, status)
    details: dict[str, str] = {}
    if status == SagaStatus.COMPENSATED:
        details = {"reason": saga.reason}
    elif status == SagaStatus.FAILED:
        details = {"step": saga.current_step, "error": saga.error}
    announce(saga, f"saga.{status.lower()}", **details)


def announce(saga: SagaInstance, type: str, **details: Any) -> None:
    payload = {"saga_id": saga.id, "saga_type": saga.type, "aggregate_id": saga.aggregate_id, **details}
    publish(type=type, key=saga.aggregate_id, payload=payload, correlation_id=saga.id)
