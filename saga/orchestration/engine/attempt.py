"""The step: one attempt of its action or compensation, run at once in the saga's transaction, or
as claimed in a transaction of its own; its outcome recorded and the saga moved on (or back)."""

from typing import Any
from uuid import UUID

from django.db import transaction

from saga.core.connections import connection_lost
from saga.core.ids import note_saga
from saga.messaging import caused_by

from .. import participants
from ..definition import DefinitionError, Refusal, RetryPolicy, SagaDefinition, Step, StepContext, StepKind
from ..models import TERMINAL, SagaInstance, SagaStatus, SagaStep
from ..running import running_ended, running_started
from ..runtime import Runtime, time_limit
from .claims import Claim
from .failures import Position, StepFailed, failed
from .history import attempt_row, finish
from .replies import await_reply
from .row import locked, save
from .steps import context, definition_of, step_at
from .transitions import begin_compensation, end, move, pass_over_skipped


def attempt_now(
    found: Position,
    saga: SagaInstance,
    definition: SagaDefinition,
    step: Step,
    kind: str,
    policy: RetryPolicy,
    runtime: Runtime,
) -> bool:
    """Run the step's next attempt in the saga's transaction, record it and move the saga.
    `found`: the saga as its lock found it, to tell in the next transaction if it moved."""
    now = runtime.clock.now()
    saga.attempts += 1
    saga.retry_at = None
    note_saga(saga)
    ctx = context(saga, definition, now, step.name, kind)
    running_started(saga, step=step, kind=kind, since=now)  # for operators: nothing shows until it ends
    try:
        with time_limit(step.timeout):
            outcome = _invoke(step, kind, ctx, runtime)
    except Exception as error:  # recorded after the rollback, in failures.record_failure
        if connection_lost():
            raise  # not the step's failure: the doorbell's task runs it again on a new connection
        raise StepFailed(found, saga.step_index, kind, now, error) from error
    finally:
        running_ended(saga.id)
    return _conclude(saga, definition, step, attempt_row(saga, step.name, kind, now), ctx, outcome, runtime)


def run(saga_id: UUID, claim: Claim, runtime: Runtime) -> bool:
    """The second transaction of a claimed attempt: run it, unless the saga was redirected
    meanwhile (a cancel, an operator). True if the saga may move again at once."""
    with transaction.atomic():
        saga = locked(saga_id)
        row = SagaStep.objects.get(pk=claim.row_id)
        if row.status != SagaStep.Status.RUNNING or claim != Claim(
            row.pk, saga.status, saga.direction, saga.step_index
        ):
            SagaStep.objects.filter(pk=row.pk, status=SagaStep.Status.RUNNING).update(status=SagaStep.Status.ABANDONED)
            saga.claimed = False
            saga.save(update_fields=["claimed", "updated_at"])
            return saga.status not in TERMINAL
        saga.claimed = False
        definition = definition_of(saga)
        step = step_at(definition, saga.step_index)
        ctx = context(saga, definition, runtime.clock.now(), step.name, row.kind)
        try:
            with transaction.atomic(), time_limit(step.timeout):
                outcome = _invoke(step, row.kind, ctx, runtime)
        except participants.AwaitingReply as waiting:
            return await_reply(saga, step, row, waiting, runtime)
        except Exception as error:
            if connection_lost():
                raise  # not the step's failure: this attempt is taken over on a new connection
            return failed(saga, definition, step, row, error, runtime)
        return _conclude(saga, definition, step, row, ctx, outcome, runtime)


def _invoke(step: Step[Any], kind: str, ctx: StepContext[Any], runtime: Runtime) -> object:
    function = step.action if kind == SagaStep.Kind.ACTION else step.compensation
    if function is None:
        raise DefinitionError(f"step {step.name} has no {kind}")  # never claimed: nothing to undo
    with caused_by(ctx.saga_id, ctx.command_id(step.name, kind)):
        injected = runtime.faults.before(step.name, kind, ctx)
        if injected is not None:
            return injected
        return function(ctx)


def _conclude(
    saga: SagaInstance,
    definition: SagaDefinition,
    step: Step,
    row: SagaStep,
    ctx: StepContext[Any],
    outcome: object,
    runtime: Runtime,
) -> bool:
    """The attempt returned: record its outcome and move the saga on (or back)."""
    saga.data = ctx.data
    if isinstance(outcome, Refusal) and row.kind == SagaStep.Kind.ACTION and step.kind != StepKind.RETRIABLE:
        finish(row, SagaStep.Status.REFUSED, runtime, error=outcome.reason)
        begin_compensation(
            saga, definition, saga.step_index, outcome.reason, f"{step.name} refused: {outcome.reason}", runtime
        )
    elif isinstance(outcome, Refusal):
        return failed(saga, definition, step, row, RuntimeError(f"refused: {outcome.reason}"), runtime)
    else:
        finish(row, SagaStep.Status.SUCCEEDED, runtime)
        forward = row.kind == SagaStep.Kind.ACTION
        move(saga, definition, saga.step_index + (1 if forward else -1), runtime.clock.now(), runtime)
        if forward and _completed_after(saga, definition, runtime):
            return False
    save(saga)
    return True


def _completed_after(saga: SagaInstance, definition: SagaDefinition, runtime: Runtime) -> bool:
    """After a step, in its transaction: pass over the steps ahead that do not apply, and end the
    saga if none is left. A hook that fails here is met again when the next step is decided."""
    now = runtime.clock.now()
    try:
        pass_over_skipped(saga, definition, context(saga, definition, now), now, runtime)
    except Exception:  # noqa: BLE001 - handled in the next transaction, like any failing hook
        return False
    if saga.step_index < len(definition.steps):
        return False
    end(saga, SagaStatus.COMPLETED)
    return True
