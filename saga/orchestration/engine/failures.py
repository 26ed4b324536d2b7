"""Failures: an attempt that raised (tried again by its step's policy, or given up), and, when it
ran in the saga's own transaction, recorded in the next one; a definition's hook that raised."""

import functools
import logging
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from django.db import transaction

from saga.core.conf import saga_settings

from .. import participants
from ..definition import RetryPolicy, SagaDefinition, Step
from ..models import SagaInstance, SagaStatus, SagaStep
from ..runtime import Runtime, StepTimeout
from .decision import decide
from .history import attempt_row, described, finish
from .replies import await_reply
from .row import locked
from .steps import definition_of, retry_policy, step_at
from .transitions import back_off, end, give_up

log = logging.getLogger(__package__)  # one logger for the engine, whichever module writes

MAX_HOOK_FAILURES = 5  # failures of a definition's hooks before the saga stops for an operator
HOOK_RETRY = RetryPolicy(initial_backoff=1.0, max_backoff=60.0)


@dataclass(frozen=True)
class Position:
    """Where a saga stands, as a lock found it: if it is the same in the next transaction,
    nothing happened to the saga in between."""

    status: str
    direction: str
    step_index: int
    attempts: int

    @classmethod
    def of(cls, saga: SagaInstance) -> "Position":
        return cls(saga.status, saga.direction, saga.step_index, saga.attempts)

    def same_step(self, saga: SagaInstance) -> bool:
        """Is the saga at the same step, in the same direction, whatever its attempts?"""
        return (self.status, self.direction, self.step_index) == (saga.status, saga.direction, saga.step_index)


class StepFailed(Exception):
    """A step run in the saga's own transaction raised: the transaction rolls back, and the
    failure is recorded in the next one if the saga is still where it was."""

    def __init__(self, found: Position, step_index: int, kind: str, started_at: datetime, error: Exception):
        super().__init__(str(error))
        self.found, self.step_index, self.kind, self.started_at, self.error = found, step_index, kind, started_at, error


def failed(
    saga: SagaInstance, definition: SagaDefinition, step: Step, row: SagaStep, error: Exception, runtime: Runtime
) -> bool:
    description = described(error)
    finish(row, SagaStep.Status.FAILED, runtime, error=description)
    if isinstance(error, participants.RemoteCommandFailed):
        saga.data.get(participants.REPLIES_KEY, {}).pop(str(error.command_id), None)  # the retry sends it anew
    policy = retry_policy(step, row.kind)
    transient = isinstance(error, StepTimeout) or policy.is_transient(error)
    if transient and not policy.exhausted(saga.attempts):
        saga.error = description
        if saga.attempts == int(saga_settings.SAGA_LONG_RETRY_ATTEMPTS):
            log.error(
                "%s %s still failing after %d attempts, retried until it succeeds: %s",
                row.kind,
                step.name,
                saga.attempts,
                description,
            )
        back_off(saga, policy.backoff(saga.attempts, runtime.rng), runtime)
        return False
    return give_up(saga, definition, step, row.kind, description, runtime)


def record_failure(saga_id: UUID, failure: StepFailed, runtime: Runtime) -> bool:
    """The step's transaction rolled back: record the failed attempt in the next one. Its row lock
    was let go in between, and another doorbell's advancer may have run the step meanwhile: the
    attempt ran all the same, so it is written whatever happened, and counts against the step (by
    its policy) while the saga is still at that step."""
    with transaction.atomic():
        saga = locked(saga_id)
        if Position.of(saga) == failure.found:
            return decide(saga, runtime, functools.partial(_attempt_failed, failure))
        if failure.found.same_step(saga):  # another advancer's attempts of it came in between
            definition = definition_of(saga)
            step = step_at(definition, saga.step_index)
            policy = retry_policy(step, failure.kind)
            return _attempt_failed(failure, saga, definition, step, failure.kind, policy, runtime)
        if not isinstance(failure.error, participants.AwaitingReply):  # (nothing ran: its command is sent)
            finish(_overtaken_row(saga, failure), SagaStep.Status.FAILED, runtime, error=described(failure.error))
        return True


def _attempt_failed(
    failure: StepFailed,
    saga: SagaInstance,
    definition: SagaDefinition,
    step: Step,
    kind: str,
    policy: RetryPolicy,
    runtime: Runtime,
) -> bool:
    if (saga.step_index, kind) != (failure.step_index, failure.kind):
        return True  # the decision differs now (a hook's answer changed): look again
    saga.attempts += 1
    saga.retry_at = None
    row = attempt_row(saga, step.name, kind, failure.started_at)
    if isinstance(failure.error, participants.AwaitingReply):
        return await_reply(saga, step, row, failure.error, runtime)
    return failed(saga, definition, step, row, failure.error, runtime)


def _overtaken_row(saga: SagaInstance, failure: StepFailed) -> SagaStep:
    """The row of a failed attempt whose saga has left its step meanwhile: history only."""
    name = definition_of(saga).steps[failure.step_index].name
    row = attempt_row(saga, name, failure.kind, failure.started_at)
    row.attempt = failure.found.attempts + 1
    return row


def hook_failed(saga_id: UUID, error: Exception, runtime: Runtime) -> bool:
    """Record a failure outside any step's action, back off, and stop after a few."""
    description = described(error)
    with transaction.atomic():
        saga = locked(saga_id)
        saga.attempts += 1
        saga.error = f"{saga.current_step or 'saga'}: {description}"
        if saga.attempts >= MAX_HOOK_FAILURES:
            end(saga, SagaStatus.FAILED)
            log.error("saga %s FAILED: %s", saga.id, saga.error)
            return False
        back_off(saga, HOOK_RETRY.backoff(saga.attempts, runtime.rng), runtime)
    return False
