"""The operator actions on a saga (retry, compensate, rewind, resolve): what each does, which a
saga's state allows (as the engine would answer), and running one through `saga.services`."""

import uuid
from typing import Any

from django.http import Http404, HttpRequest

from saga import services
from saga.models import ACTIVE, Direction, OperatorAction, SagaInstance, SagaStatus
from saga.orchestration.definition import DefinitionError, SagaDefinition
from saga.orchestration.registry import definitions

# Each action's button ("label"), list action ("selected"), confirm button ("verb") and what its
# confirmation page says it does ("explain").
ACTIONS: dict[str, dict[str, str]] = {
    "retry": {
        "label": "Retry",
        "selected": "Retry the selected sagas",
        "verb": "retry",
        "explain": "Resume the saga where it stopped, with a fresh allowance of attempts for the step it is at "
        "(a saga still moving is only nudged). Participants are idempotent: nothing that happened happens twice.",
    },
    "compensate": {
        "label": "Compensate",
        "selected": "Compensate the selected sagas (before their pivot)",
        "verb": "compensate",
        "explain": "Roll the saga back: undo every step done so far, in reverse order. Only before its pivot.",
    },
    "rewind": {
        "label": "Rewind",
        "selected": "Rewind the selected sagas to a step",
        "verb": "rewind",
        "explain": "Run the saga forward again from the step you choose (as replay_saga --from-step). Steps "
        "that already happened change nothing; it cannot go back across its pivot.",
    },
    "resolve": {
        "label": "Mark resolved",
        "selected": "Mark the selected FAILED sagas resolved",
        "verb": "mark resolved",
        "explain": "Say the FAILED saga was repaired by hand. It stays FAILED, leaves the list of sagas needing an "
        "operator, and no operator action moves it any more. Say what was done: the comment is required.",
    },
}


def definition_for(saga: SagaInstance) -> SagaDefinition | None:
    try:
        return definitions.get(saga.type, saga.version)
    except DefinitionError:
        return None


def rewind_steps(saga: SagaInstance) -> list[str]:
    """The steps the saga may be rewound to: those it has reached, never back across its pivot."""
    definition = definition_for(saga)
    forward = saga.direction == Direction.FORWARD
    if definition is None or not forward or saga.resolved_at or saga.status not in (*ACTIVE, SagaStatus.FAILED):
        return []
    last = min(saga.step_index, len(definition.steps) - 1)
    first = definition.pivot_index + 1 if saga.step_index > definition.pivot_index else 0
    return [step.name for step in definition.steps[first : last + 1]]


def why_not(action: str, saga: SagaInstance) -> str:
    """Why the saga's state refuses `action` (as the engine would), or "" when it allows it."""
    if saga.resolved_at is not None:
        return "it was resolved by an operator"
    definition = definition_for(saga)
    if action == "retry":
        allowed = (SagaStatus.FAILED, SagaStatus.STARTED, SagaStatus.COMPENSATING)
        return "" if saga.status in allowed else f"a {saga.status} saga cannot be retried"
    if action == "compensate":
        if saga.status in (SagaStatus.COMPLETED, SagaStatus.COMPENSATED, SagaStatus.COMPENSATING):
            return f"a {saga.status} saga cannot be compensated"
        if saga.direction == Direction.FORWARD and definition and saga.step_index > definition.pivot_index:
            return "it has passed its pivot: it can only go forward"
        return ""
    if action == "rewind":
        return "" if rewind_steps(saga) else f"a {saga.status} saga cannot be rewound"
    if action == "resolve":
        return "" if saga.status == SagaStatus.FAILED else "only a FAILED saga can be resolved"
    return "unknown action"


def saga_operate(action: str, request: HttpRequest, saga_id: uuid.UUID, data: dict[str, Any]) -> OperatorAction:
    """Run `action` on the saga as the request's user, with the confirmed form's comment (and step).
    The form's token in the key makes a resubmitted form one action."""
    key = f"{data['token']}:{saga_id}"
    common = {"saga_id": saga_id, "by": request.user, "comment": data.get("comment", ""), "key": key}
    if action == "retry":
        return services.saga_retry(**common)
    if action == "compensate":
        return services.saga_compensate(**common)
    if action == "rewind":
        return services.saga_rewind(step=data["step"], **common)
    if action == "resolve":
        return services.saga_resolve(**common)
    raise Http404(f"no operator action {action!r}")
