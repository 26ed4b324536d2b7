"""The engine's public commands, for contexts and for operators (API, admin, commands)."""

from dataclasses import dataclass
from uuid import UUID

from django.db import transaction

from .messaging import Envelope, MalformedMessage, catalog, handlers, topic_for
from .messaging.inbox import Handlers
from .models import SagaInstance, SagaStatus
from .orchestration import engine
from .orchestration.definition import DefinitionError, SagaDefinition
from .orchestration.engine import SagaStateConflict
from .orchestration.participants import Participant, participants, reply_types
from .orchestration.registry import definitions
from .orchestration.runtime import Runtime
from .orchestration.scheduling import default_runtime

__all__ = [
    "DefinitionError",
    "Participant",
    "ReplayPlan",
    "SagaStateConflict",
    "participant_register",
    "saga_cancel",
    "saga_compensate",
    "saga_register",
    "saga_replay",
    "saga_retry",
    "saga_signal",
    "saga_start",
]


def saga_register(definition: SagaDefinition) -> SagaDefinition:
    return definitions.register(definition)


def participant_register(participant: Participant) -> None:
    """Make a context's commands callable from saga steps with `ctx.call(participant.name, ...)`."""
    participants.register(participant)


def on_reply(message: Envelope) -> None:
    """A remote participant's `<command>.succeeded` / `.failed` reply."""
    if message.correlation_id is None or message.causation_id is None:
        raise MalformedMessage(f"{message.type} lacks the saga (correlation) or command (causation) id")
    if not SagaInstance.objects.filter(pk=message.correlation_id).exists():
        raise MalformedMessage(f"{message.type} is for an unknown saga {message.correlation_id}")
    ok = message.type.endswith(".succeeded")
    engine.deliver_reply(message.correlation_id, message.causation_id, ok, message.payload, default_runtime())


def inbound() -> tuple[list[str], list[str], Handlers]:
    """What `consume_events` reads: (topics, topics where unknown types are ignored, handlers).
    The replies of remote participants come on their event topics, among their other events."""
    served = handlers.copy()
    lenient = []
    for participant in participants.remote():
        lenient.append(topic_for(f"{participant.context}_events"))
        for reply in reply_types(participant):
            served.register(reply, on_reply)
    return [*(topic_for(role) for role in catalog.roles(inbound=True)), *lenient], lenient, served


def saga_start(
    *, name: str, aggregate_id: UUID, data: dict, correlation_id: UUID | None = None, runtime: Runtime | None = None
) -> SagaInstance:
    """Start the newest version of saga `name` in the caller's transaction."""
    return engine.start(
        definitions.latest(name),
        aggregate_id=aggregate_id,
        data=data,
        correlation_id=correlation_id,
        runtime=runtime or default_runtime(),
    )


def saga_signal(*, saga_id: UUID, event: str, payload: dict | None = None, runtime: Runtime | None = None) -> bool:
    return engine.signal(saga_id, event, payload, runtime or default_runtime())


def saga_cancel(*, saga_id: UUID, reason: str, runtime: Runtime | None = None) -> bool:
    return engine.cancel(saga_id, reason, runtime or default_runtime())


def saga_retry(*, saga_id: UUID, runtime: Runtime | None = None) -> SagaInstance:
    return engine.retry(saga_id, runtime or default_runtime())


def saga_compensate(*, saga_id: UUID, runtime: Runtime | None = None) -> SagaInstance:
    return engine.compensate(saga_id, runtime or default_runtime())


@dataclass(frozen=True)
class ReplayPlan:
    saga_id: UUID
    action: str  # "nothing" | "retry" | "rewind" | "advance"
    description: str


def saga_replay(
    *, saga_id: UUID, from_step: str | None = None, dry_run: bool = False, runtime: Runtime | None = None
) -> ReplayPlan:
    """Re-drive a saga in this process. Finished sagas are left as they are, so replaying one
    changes nothing; participants are idempotent, so re-running a step that happened is safe."""
    runtime = runtime or default_runtime()
    plan = _replay_plan(SagaInstance.objects.get(pk=saga_id), from_step)
    if dry_run or plan.action == "nothing":
        return plan
    with transaction.atomic():
        if plan.action == "rewind":
            assert from_step is not None  # the plan rewinds only to a step it was given
            engine.rewind(saga_id, from_step, runtime)
        elif plan.action == "retry":
            engine.retry(saga_id, runtime)
    engine.advance(saga_id, runtime)
    return plan


def _replay_plan(saga: SagaInstance, from_step: str | None) -> ReplayPlan:
    if saga.status in (SagaStatus.COMPLETED, SagaStatus.COMPENSATED):
        return ReplayPlan(saga.id, "nothing", f"already {saga.status}; nothing to do")
    if from_step:
        engine.definition_of(saga).step_named(from_step)
        return ReplayPlan(saga.id, "rewind", f"{saga.status} at {saga.current_step or '-'}: run again from {from_step}")
    if saga.status == SagaStatus.FAILED:
        direction = "compensating" if saga.direction == "BACKWARD" else "going forward"
        return ReplayPlan(saga.id, "retry", f"FAILED at {saga.current_step}: resume {direction} ({saga.error[:80]})")
    return ReplayPlan(saga.id, "advance", f"{saga.status} at {saga.current_step or '-'}: advance it now")
