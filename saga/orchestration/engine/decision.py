"""What a locked saga does next: nothing yet, a move of its own (a deadline, a wait entered or
expired, a reply not in time, the end), or an attempt of a step, taken as the caller says."""

from collections.abc import Callable
from typing import Any, TypeVar

from ..definition import AnyStep, RetryPolicy, SagaDefinition, Step, StepContext, Wait
from ..models import TERMINAL, Direction, SagaInstance, SagaStatus, SagaStep
from ..runtime import Runtime
from .claims import Claim
from .replies import reply_timed_out
from .steps import context, definition_of, step_at
from .transitions import deadline_passed, end, pass_over_skipped
from .waits import enter_wait, wait_expired

# How the next attempt of a step is taken: claimed for a second transaction (a Claim, or False
# for a crash found), or run at once (True if the saga may move again at once).
T = TypeVar("T", Claim | bool, bool)
Attempt = Callable[[SagaInstance, SagaDefinition, Step, str, RetryPolicy, Runtime], T]


def decide(saga: SagaInstance, runtime: Runtime, attempt: Attempt[T]) -> T | bool:
    """What the locked saga does next: nothing yet, a move of its own, or an attempt of a step."""
    definition = definition_of(saga)
    now = runtime.clock.now()
    if saga.status in TERMINAL:
        return False
    if saga.deadline and now >= saga.deadline and saga.direction == Direction.FORWARD:
        if saga.step_index < definition.pivot_index:
            return deadline_passed(saga, definition, runtime)
        # At or past its pivot a saga has all it needs: it only goes forward, however long that
        # takes (a capture retried through a day of provider outage), rather than undo or stop.
        saga.deadline = None
    if saga.retry_at and saga.retry_at > now:
        return False
    if saga.status == SagaStatus.WAITING:
        if not (saga.timer_at and saga.timer_at <= now):
            return False
        if isinstance(definition.steps[saga.step_index], Wait):
            return wait_expired(saga, definition, runtime)
        return reply_timed_out(saga, definition, runtime)
    if saga.direction == Direction.FORWARD:
        return _decide_forward(saga, definition, runtime, attempt)
    return _decide_backward(saga, definition, runtime, attempt)


def _decide_forward(saga: SagaInstance, definition: SagaDefinition, runtime: Runtime, attempt: Attempt[T]) -> T | bool:
    now = runtime.clock.now()
    ctx = context(saga, definition, now)
    pass_over_skipped(saga, definition, ctx, now, runtime)
    if saga.step_index >= len(definition.steps):
        end(saga, SagaStatus.COMPLETED)
        return False
    step = definition.steps[saga.step_index]
    if isinstance(step, Wait):
        return enter_wait(saga, definition, step, ctx, runtime)
    return attempt(saga, definition, step, SagaStep.Kind.ACTION, step.retry, runtime)


def _decide_backward(saga: SagaInstance, definition: SagaDefinition, runtime: Runtime, attempt: Attempt[T]) -> T | bool:
    now = runtime.clock.now()
    # Steps with nothing to undo are passed over without a history row.
    ctx = context(saga, definition, now)
    while saga.step_index >= 0 and not _needs_compensation(definition.steps[saga.step_index], ctx):
        saga.step_index -= 1
    if saga.step_index < 0:
        if definition.on_compensated is not None:
            definition.on_compensated(ctx, saga.reason)
        end(saga, SagaStatus.COMPENSATED)
        return False
    step = step_at(definition, saga.step_index)
    saga.current_step = step.name
    return attempt(saga, definition, step, SagaStep.Kind.COMPENSATION, step.compensation_retry, runtime)


def _needs_compensation(step: AnyStep, ctx: StepContext[Any]) -> bool:
    return isinstance(step, Step) and step.compensation is not None and step.when(ctx)
