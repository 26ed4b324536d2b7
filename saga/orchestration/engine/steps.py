"""The saga's steps as its definition gives them: the version it started with, the step at an
index, the context a step or hook sees, the retry policy of an attempt."""

import copy
from datetime import datetime
from typing import Any

from ..definition import DefinitionError, RetryPolicy, SagaDefinition, Step, StepContext
from ..models import SagaInstance, SagaStep
from ..registry import definitions


def checked(definition: SagaDefinition) -> SagaDefinition:
    """`definition`, if this code gives it the steps its version has always had. The engine reads
    the registry here only, so that a test can deploy a registry of its own."""
    return definitions.checked(definition)


def definition_of(saga: SagaInstance) -> SagaDefinition:
    """The version the saga started with, if this code gives it the steps it has always had."""
    return checked(definitions.get(saga.type, saga.version))


def step_at(definition: SagaDefinition[Any], index: int) -> Step[Any]:
    """The step at `index`, for an attempt: actions, compensations and remote replies are only
    ever of steps (a wait is entered and left in the claim, never run)."""
    step = definition.steps[index]
    if not isinstance(step, Step):
        raise DefinitionError(f"saga {definition.name} v{definition.version}: {step.name} is a wait, not a step")
    return step


def context(
    saga: SagaInstance, definition: SagaDefinition[Any], now: datetime, step: str = "", kind: str = SagaStep.Kind.ACTION
) -> StepContext[Any]:
    return StepContext(
        saga_id=saga.id,
        request_id=saga.correlation_id,
        data=copy.deepcopy(saga.data),
        now=now,
        attempt=max(saga.attempts, 1),
        step=step,
        kind=kind,
        data_class=definition.data,
    )


def retry_policy(step: Step, kind: str) -> RetryPolicy:
    return step.retry if kind == SagaStep.Kind.ACTION else step.compensation_retry
