"""The engine's public commands, for contexts and for operators (API, admin, commands)."""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from .messaging import Envelope, MalformedMessage, catalog, handlers, topic_for
from .messaging import inbox as inbox_
from .messaging.inbox import Handlers
from .models import DeadLetter, OperatorAction, SagaInstance, SagaStatus
from .orchestration import engine
from .orchestration.definition import DefinitionError, SagaDefinition
from .orchestration.engine import SagaBusy, SagaStateConflict
from .orchestration.participants import Participant, ParticipantCommand, command_handlers, participants, reply_types
from .orchestration.registry import definitions
from .orchestration.runtime import Runtime
from .orchestration.scheduling import default_runtime

__all__ = [
    "COMMENT_REQUIRED",
    "OPERATE_DEAD_LETTERS",
    "OPERATE_SAGAS",
    "DeadLetterStateConflict",
    "DefinitionError",
    "OperatorKeyReused",
    "Participant",
    "ParticipantCommand",
    "ReplayPlan",
    "SagaBusy",
    "SagaStateConflict",
    "dead_letter_discard",
    "dead_letter_replay",
    "participant_register",
    "saga_cancel",
    "saga_compensate",
    "saga_register",
    "saga_replay",
    "saga_resolve",
    "saga_retry",
    "saga_rewind",
    "saga_signal",
    "saga_start",
]

# The permissions an operator needs (Django model permissions of the saga app).
OPERATE_SAGAS = "saga.change_sagainstance"
OPERATE_DEAD_LETTERS = "saga.change_deadletter"


def saga_register(definition: SagaDefinition) -> SagaDefinition:
    return definitions.register(definition)


def participant_register(participant: Participant) -> None:
    """Make a context's commands servable (run_participant) and callable remotely: its messages go
    in the catalog, and its replies are read by consume_events when it is remote."""
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
    The replies of remote participants come on their event topics, among their other events;
    so do the events an app reads from a topic the project also sends other messages on."""
    served = handlers.copy()
    lenient = [topic_for(role) for role in catalog.shared_roles()]
    for participant in participants.remote():
        lenient.append(topic_for(f"{participant.context}_events"))
        for reply in reply_types(participant):
            served.register(reply, on_reply)
    topics = [topic_for(role) for role in catalog.roles(inbound=True)]
    return [*topics, *(topic for topic in lenient if topic not in topics)], lenient, served


def saga_start(
    *, name: str, aggregate_id: UUID, data: dict, request_id: UUID | None = None, runtime: Runtime | None = None
) -> SagaInstance:
    """Start the newest version of saga `name` in the caller's transaction. `request_id`: the HTTP
    request behind it (by default the one being served, if any)."""
    return engine.start(
        definitions.latest(name),
        aggregate_id=aggregate_id,
        data=data,
        request_id=request_id,
        runtime=runtime or default_runtime(),
    )


def saga_signal(*, saga_id: UUID, event: str, payload: dict | None = None, runtime: Runtime | None = None) -> bool:
    return engine.signal(saga_id, event, payload, runtime or default_runtime())


def saga_cancel(*, saga_id: UUID, reason: str, runtime: Runtime | None = None) -> bool:
    return engine.cancel(saga_id, reason, runtime or default_runtime())


# --- operators: each action checks the operator's permission, needs the operator's comment (why),
# is safe to repeat, and leaves its OperatorAction row (who, what, when, why, what came of it) in
# the transaction of its effect.
# `by` is the operator (None: the system itself, e.g. a management command); `key` is the
# operator's request key (a confirmation form's token, an API Idempotency-Key): sent again, it gets
# the first row back and changes nothing. A refused action raises, after its row is written.


COMMENT_REQUIRED = "Say why: a comment is required (kept in the audit trail with who and when)."


class OperatorKeyReused(Exception):
    """The request key was already used for another action or target."""


class DeadLetterStateConflict(Exception):
    """The dead letter's state does not allow the requested action."""


def saga_retry(
    *, saga_id: UUID, comment: str, by: Any = None, key: str | None = None, runtime: Runtime | None = None
) -> OperatorAction:
    """Resume a FAILED saga where it stopped (or nudge a stuck one); the engine moves it."""
    rt = runtime or default_runtime()
    return _operate_saga(
        OperatorAction.Action.RETRY, saga_id, by, comment, key, lambda saga: _retry(saga, rt), runtime=rt
    )


def saga_compensate(
    *, saga_id: UUID, comment: str, by: Any = None, key: str | None = None, runtime: Runtime | None = None
) -> OperatorAction:
    """Roll back a saga that is stuck or FAILED before its pivot."""
    rt = runtime or default_runtime()

    def compensate(saga: SagaInstance) -> tuple[bool, str]:
        engine.compensate(saga.id, rt)
        return True, "rolling back"

    return _operate_saga(OperatorAction.Action.COMPENSATE, saga_id, by, comment, key, compensate, runtime=rt)


def saga_rewind(
    *,
    saga_id: UUID,
    step: str,
    comment: str,
    by: Any = None,
    key: str | None = None,
    runtime: Runtime | None = None,
) -> OperatorAction:
    """Run the saga forward again from `step` (as `replay_saga --from-step`); participants are
    idempotent, so a step that already happened changes nothing."""
    rt = runtime or default_runtime()

    def rewind(saga: SagaInstance) -> tuple[bool, str]:
        try:
            engine.rewind(saga.id, step, rt)
        except DefinitionError as error:
            raise SagaStateConflict(str(error)) from error
        return True, f"running again from {step}"

    return _operate_saga(OperatorAction.Action.REWIND, saga_id, by, comment, key, rewind, step=step, runtime=rt)


def saga_resolve(
    *, saga_id: UUID, comment: str, by: Any = None, key: str | None = None, runtime: Runtime | None = None
) -> OperatorAction:
    """Mark a FAILED saga resolved, saying how. It stays FAILED."""
    rt = runtime or default_runtime()

    def resolve(saga: SagaInstance) -> tuple[bool, str]:
        if engine.resolve(saga.id, rt):
            return True, "resolved"
        return False, "already resolved"

    return _operate_saga(OperatorAction.Action.RESOLVE, saga_id, by, comment, key, resolve, runtime=rt)


def _retry(saga: SagaInstance, runtime: Runtime) -> tuple[bool, str]:
    if saga.status == SagaStatus.FAILED:
        engine.retry(saga.id, runtime)
        return True, "resumed"
    engine.retry(saga.id, runtime)  # refuses what is not moving; a moving saga is only nudged
    return False, f"already {saga.status}: nudged"


def _operate_saga(
    action: str,
    saga_id: UUID,
    by: Any,
    comment: str,
    key: str | None,
    do: Callable[[SagaInstance], tuple[bool, str]],
    *,
    runtime: Runtime,
    step: str = "",
) -> OperatorAction:
    _require(by, OPERATE_SAGAS)
    if not comment.strip():
        raise ValueError(COMMENT_REQUIRED)
    refused: SagaStateConflict | None = None
    with transaction.atomic():
        saga = SagaInstance.objects.select_for_update().get(pk=saga_id)
        repeated = _repeated(key, action, saga=saga)
        if repeated is not None:
            return repeated
        record = OperatorAction(
            action=action, saga=saga, comment=comment, step=step, status_before=saga.status, key=key or None
        )
        _by(record, by)
        try:
            if saga.resolved_at is not None and action != OperatorAction.Action.RESOLVE:
                raise SagaStateConflict(f"the saga was resolved at {saga.resolved_at:%Y-%m-%d %H:%M:%S}; it stays")
            with transaction.atomic():
                changed, detail = do(saga)
        except SagaStateConflict as conflict:
            refused = conflict
            record.outcome, record.detail = OperatorAction.Outcome.REFUSED, str(conflict)
        else:
            record.outcome = OperatorAction.Outcome.DONE if changed else OperatorAction.Outcome.NOTHING
            record.detail = detail
        saga.refresh_from_db(fields=["status"])
        record.status_after = saga.status
        record.save(force_insert=True)
    if refused is not None:
        raise refused
    return record


def dead_letter_replay(
    *, dead_letter_id: int, by: Any = None, comment: str = "", key: str | None = None
) -> OperatorAction:
    """Consume a parked message again through the inbox, with the handlers the consumer would
    use: acted on at most once by its id. A message still unusable stays parked with its new error."""

    def replay(letter: DeadLetter, record: OperatorAction) -> None:
        try:
            with transaction.atomic():
                outcome = inbox_.redeliver(letter, using=_handlers_for(letter.topic))
        except MalformedMessage as error:
            letter.error = str(error)
            letter.save(update_fields=["error"])
            record.outcome, record.detail = OperatorAction.Outcome.FAILED, f"still unusable: {error}"
            return
        _resolve_letter(letter, DeadLetter.Resolution.REPLAYED)
        record.outcome = OperatorAction.Outcome.DONE
        record.detail = "processed" if outcome == "processed" else "its id was consumed before: not acted on again"

    return _on_dead_letter(dead_letter_id, OperatorAction.Action.REPLAY_DEAD_LETTER, replay, by, comment, key)


def dead_letter_discard(*, dead_letter_id: int, comment: str, by: Any = None, key: str | None = None) -> OperatorAction:
    """Set a parked message aside for good, saying why (the comment is required)."""
    if not comment.strip():
        raise ValueError("say why the message is discarded: a comment is required")

    def discard(letter: DeadLetter, record: OperatorAction) -> None:
        _resolve_letter(letter, DeadLetter.Resolution.DISCARDED)
        record.outcome, record.detail = OperatorAction.Outcome.DONE, "discarded"

    return _on_dead_letter(dead_letter_id, OperatorAction.Action.DISCARD_DEAD_LETTER, discard, by, comment, key)


def _on_dead_letter(
    dead_letter_id: int,
    action: str,
    act: Callable[[DeadLetter, OperatorAction], None],
    by: Any,
    comment: str,
    key: str | None,
) -> OperatorAction:
    """An operator's action on a dead letter: permission-guarded, once per key, audited, and a
    no-op on a letter already replayed or discarded."""
    _require(by, OPERATE_DEAD_LETTERS)
    with transaction.atomic():
        letter = DeadLetter.objects.select_for_update().get(pk=dead_letter_id)
        repeated = _repeated(key, action, dead_letter=letter)
        if repeated is not None:
            return repeated
        record = OperatorAction(action=action, dead_letter=letter, comment=comment, key=key or None)
        _by(record, by)
        if letter.resolution:
            record.outcome, record.detail = OperatorAction.Outcome.NOTHING, f"already {letter.resolution}"
        else:
            act(letter, record)
        record.save(force_insert=True)
        return record


def _resolve_letter(letter: DeadLetter, resolution: str) -> None:
    letter.resolution, letter.resolved_at = resolution, timezone.now()
    letter.save(update_fields=["resolution", "resolved_at"])


def _handlers_for(topic: str) -> Handlers:
    """The handlers that would have consumed a message of `topic`: a participant's commands on its
    command topic (run_participant), else those of consume_events."""
    for participant in participants.all():
        if topic == topic_for(f"{participant.context}_commands"):
            return command_handlers(participant)
    return inbound()[2]


def _require(by: Any, permission: str) -> None:
    if by is not None and not by.has_perm(permission):
        raise PermissionDenied(f"You need the {permission} permission.")


def _by(record: OperatorAction, by: Any) -> None:
    if by is not None and getattr(by, "is_authenticated", False):
        record.user = by
        record.username = by.get_username()


def _repeated(
    key: str | None, action: str, *, saga: SagaInstance | None = None, dead_letter: DeadLetter | None = None
) -> OperatorAction | None:
    """The action already taken under this request key, if any."""
    if not key:
        return None
    done = OperatorAction.objects.filter(key=key).first()
    if done is None:
        return None
    target = (saga.pk if saga else None, dead_letter.pk if dead_letter else None)
    if done.action != action or (done.saga_id, done.dead_letter_id) != target:
        raise OperatorKeyReused(f"the key {key!r} was used for another action ({done.action})")
    return done


@dataclass(frozen=True)
class ReplayPlan:
    saga_id: UUID
    action: str  # "nothing" | "retry" | "rewind" | "advance"
    description: str


def saga_replay(
    *,
    saga_id: UUID,
    comment: str = "",
    from_step: str | None = None,
    dry_run: bool = False,
    by: Any = None,
    runtime: Runtime | None = None,
) -> ReplayPlan:
    """Re-drive a saga in this process. Finished sagas are left as they are, so replaying one
    changes nothing; participants are idempotent, so re-running a step that happened is safe.
    A replay that moves the saga is an operator's action like the others (a rewind with
    `from_step`, else a retry): it needs the comment and leaves its audit row."""
    runtime = runtime or default_runtime()
    plan = _replay_plan(SagaInstance.objects.get(pk=saga_id), from_step)
    if dry_run or plan.action == "nothing":
        return plan

    def replay(saga: SagaInstance) -> tuple[bool, str]:
        if plan.action == "rewind":
            assert from_step is not None  # the plan rewinds only to a step it was given
            engine.rewind(saga.id, from_step, runtime)
        elif plan.action == "retry":
            engine.retry(saga.id, runtime)
        return True, plan.description  # an "advance" is the advance below

    action = OperatorAction.Action.REWIND if plan.action == "rewind" else OperatorAction.Action.RETRY
    _operate_saga(action, saga_id, by, comment, None, replay, step=from_step or "", runtime=runtime)
    engine.advance(saga_id, runtime)
    return plan


def _replay_plan(saga: SagaInstance, from_step: str | None) -> ReplayPlan:
    if saga.status in (SagaStatus.COMPLETED, SagaStatus.COMPENSATED):
        return ReplayPlan(saga.id, "nothing", f"already {saga.status}; nothing to do")
    if saga.resolved_at is not None:
        return ReplayPlan(saga.id, "nothing", f"{saga.status}, resolved by an operator; nothing to do")
    if from_step:
        engine.definition_of(saga).step_named(from_step)
        return ReplayPlan(saga.id, "rewind", f"{saga.status} at {saga.current_step or '-'}: run again from {from_step}")
    if saga.status == SagaStatus.FAILED:
        direction = "compensating" if saga.direction == "BACKWARD" else "going forward"
        return ReplayPlan(saga.id, "retry", f"FAILED at {saga.current_step}: resume {direction} ({saga.error[:80]})")
    return ReplayPlan(saga.id, "advance", f"{saga.status} at {saga.current_step or '-'}: advance it now")
