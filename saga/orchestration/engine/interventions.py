"""A saga redirected from outside its steps: cancelled by its caller; retried, compensated,
rewound or resolved by an operator."""

from datetime import timedelta
from uuid import UUID

from django.db import transaction

from ..models import ACTIVE, Direction, SagaInstance, SagaStatus, SagaStep
from ..runtime import Runtime
from .history import finish_running
from .row import locked, log_scope, save_and_schedule, waiting_briefly
from .steps import definition_of
from .transitions import REACHED_KEY, begin_compensation, move


class SagaStateConflict(Exception):
    """The saga's state does not allow the requested action."""


@log_scope
def cancel(saga_id: UUID, reason: str, runtime: Runtime) -> bool:
    """Roll the saga back with `reason`, if it has not passed its pivot. SagaBusy when its row
    stays locked."""
    with waiting_briefly(saga_id):
        saga = locked(saga_id)
        definition = definition_of(saga)
        if saga.status not in ACTIVE or saga.direction != Direction.FORWARD or saga.step_index > definition.pivot_index:
            return False
        begin_compensation(saga, definition, saga.step_index, reason, f"cancelled: {reason}", runtime)
        save_and_schedule(saga, runtime)
        return True


@log_scope
def retry(saga_id: UUID, runtime: Runtime) -> SagaInstance:
    """Operator: resume a FAILED saga where it stopped (or nudge a stuck one)."""
    with transaction.atomic():
        saga = locked(saga_id)
        if saga.status not in (SagaStatus.FAILED, SagaStatus.STARTED, SagaStatus.COMPENSATING):
            raise SagaStateConflict(f"a {saga.status} saga cannot be retried")
        if saga.status == SagaStatus.FAILED:
            backward = saga.direction == Direction.BACKWARD
            saga.status = SagaStatus.COMPENSATING if backward else SagaStatus.STARTED
            saga.attempts = saga.crashes = 0  # a fresh start: history rows stay
        saga.retry_at = None
        saga.wake_at = runtime.clock.now() + timedelta(seconds=runtime.stall_after)
        save_and_schedule(saga, runtime)
        return saga


@log_scope
def compensate(saga_id: UUID, runtime: Runtime) -> SagaInstance:
    """Operator: roll back a saga that is stuck or FAILED before its pivot, with the definition's
    operator reason. A saga already rolling back (FAILED in a compensation) keeps its reason."""
    with transaction.atomic():
        saga = locked(saga_id)
        definition = definition_of(saga)
        if saga.status in (SagaStatus.COMPLETED, SagaStatus.COMPENSATED, SagaStatus.COMPENSATING):
            raise SagaStateConflict(f"a {saga.status} saga cannot be compensated")
        if saga.direction == Direction.BACKWARD:
            return retry(saga_id, runtime)
        if saga.step_index > definition.pivot_index:
            raise SagaStateConflict("the saga has passed its pivot; it can only go forward")
        begin_compensation(
            saga,
            definition,
            saga.step_index,
            definition.operator_reason,
            "compensation requested by an operator",
            runtime,
        )
        save_and_schedule(saga, runtime)
        return saga


@log_scope
def rewind(saga_id: UUID, step_name: str, runtime: Runtime) -> SagaInstance:
    """Operator: run the saga forward again from `step_name` (participants are idempotent, so
    steps that already happened change nothing)."""
    with transaction.atomic():
        saga = locked(saga_id)
        definition = definition_of(saga)
        index = definition.step_named(step_name)
        moving_forward = saga.status in ACTIVE and saga.direction == Direction.FORWARD
        failed_forward = saga.status == SagaStatus.FAILED and saga.direction == Direction.FORWARD
        if not (moving_forward or failed_forward) or index > saga.step_index:
            raise SagaStateConflict(f"cannot replay a {saga.status} saga from {step_name}")
        if index <= definition.pivot_index < saga.step_index:
            raise SagaStateConflict(f"the saga has passed its pivot; it cannot go back to {step_name}")
        finish_running(saga, SagaStep.Status.ABANDONED, runtime.clock.now())
        # What the steps up to here did stays done until they run again: a roll-back before the
        # saga is back there must undo them too.
        saga.data[REACHED_KEY] = max(saga.step_index, saga.data.get(REACHED_KEY, -1))
        saga.status = SagaStatus.STARTED
        move(saga, definition, index, runtime.clock.now(), runtime)
        save_and_schedule(saga, runtime)
        return saga


@log_scope
def resolve(saga_id: UUID, runtime: Runtime) -> bool:
    """Operator: mark a FAILED saga resolved (someone repaired what it left by hand). It stays
    FAILED, the status the contract knows, and is no longer moved by the engine or counted as
    needing an operator. False when it was resolved already."""
    with transaction.atomic():
        saga = locked(saga_id)
        if saga.status != SagaStatus.FAILED:
            raise SagaStateConflict(f"a {saga.status} saga cannot be resolved: only a FAILED one")
        if saga.resolved_at is not None:
            return False
        saga.resolved_at = runtime.clock.now()
        saga.save(update_fields=["resolved_at", "updated_at"])
        return True
