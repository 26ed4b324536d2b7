"""Waits for an event: the event delivered (`signal`), to the wait under way or kept for one
ahead; a wait entered (ended at once by an event that came early), and one that expired."""

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from ..definition import SagaDefinition, StepContext, Wait
from ..models import ACTIVE, Direction, SagaInstance, SagaStatus, SagaStep
from ..runtime import Runtime
from .history import finish_running, record
from .row import locked, log_scope, save, save_and_schedule, waiting_briefly
from .steps import context, definition_of
from .transitions import begin_compensation, due, move

EVENTS_KEY = "_events"  # events that arrived before their wait step, kept in the saga's data


@log_scope
def signal(saga_id: UUID, event: str, payload: dict | None, runtime: Runtime) -> bool:
    """Deliver `event`. Ends the wait for it, or is kept for a wait still ahead (even one the
    saga is about to enter). False when the saga can no longer use it: finished, rolling back,
    past that wait, or waiting past the wait's deadline (refused here, whether or not the
    sweeper has expired the wait yet). SagaBusy when its row stays locked."""
    with waiting_briefly(saga_id):
        saga = locked(saga_id)
        definition = definition_of(saga)
        if saga.status not in ACTIVE or saga.direction != Direction.FORWARD:
            return False
        now = runtime.clock.now()
        if _waits_for(saga, definition, event):
            if saga.timer_at is not None and saga.timer_at <= now:
                return False
            finish_running(saga, SagaStep.Status.SUCCEEDED, now, result=payload)
            move(saga, definition, saga.step_index + 1, now, runtime)
            save_and_schedule(saga, runtime)
            return True
        if _wait_ahead(saga, definition, event, now):
            saga.data.setdefault(EVENTS_KEY, {})[event] = payload or {}
            saga.save(update_fields=["data", "updated_at"])
            return True
        return False


def _waits_for(saga: SagaInstance, definition: SagaDefinition, event: str) -> bool:
    if saga.status != SagaStatus.WAITING:
        return False  # (a saga past its last step, not yet marked COMPLETED, has no step here)
    step = definition.steps[saga.step_index]
    return isinstance(step, Wait) and step.event == event


def _wait_ahead(saga: SagaInstance, definition: SagaDefinition, event: str, now: datetime) -> bool:
    """Is there a wait for `event` the saga has not entered yet, and will enter? The step it
    is at counts unless it is already waiting there (for a remote reply)."""
    first = saga.step_index + 1 if saga.status == SagaStatus.WAITING else saga.step_index
    ctx = context(saga, definition, now)
    return any(isinstance(step, Wait) and step.event == event and step.when(ctx) for step in definition.steps[first:])


def enter_wait(saga: SagaInstance, definition: SagaDefinition, step: Wait, ctx: StepContext, runtime: Runtime) -> bool:
    now = runtime.clock.now()
    early = saga.data.get(EVENTS_KEY, {})
    if step.event in early:
        record(saga, step.name, SagaStep.Kind.ACTION, SagaStep.Status.SUCCEEDED, now, result=early[step.event])
        move(saga, definition, saga.step_index + 1, now, runtime)
        save(saga)
        return True
    if step.on_enter is not None:
        step.on_enter(ctx)
    saga.status = SagaStatus.WAITING
    saga.attempts = 1  # waiting is the wait's one attempt, as its history row says
    saga.timer_at = now + timedelta(seconds=step.timeout(ctx))
    saga.wake_at = due(saga, saga.timer_at)
    save(saga)
    record(saga, step.name, SagaStep.Kind.ACTION, SagaStep.Status.RUNNING, now, finished=False)
    return False


def wait_expired(saga: SagaInstance, definition: SagaDefinition[Any], runtime: Runtime) -> bool:
    step = definition.steps[saga.step_index]
    assert isinstance(step, Wait)  # only a saga waiting at a Wait step gets here (see decision.decide)
    now = runtime.clock.now()
    finish_running(saga, SagaStep.Status.FAILED, now, error=f"no {step.event} before the deadline")
    begin_compensation(saga, definition, saga.step_index, step.timeout_reason, f"{step.name} timed out", runtime)
    save(saga)
    return True
