"""Remote participants: a step's command sent, and the saga waiting for the reply; the reply
delivered (`deliver_reply`, from the consumer), or not in time."""

import logging
from datetime import timedelta
from typing import Any
from uuid import UUID

from django.db import transaction

from .. import participants
from ..definition import SagaDefinition, Step, Wait
from ..models import Direction, SagaInstance, SagaStatus, SagaStep
from ..runtime import Runtime
from .history import finish
from .row import locked, log_scope, save, save_and_schedule
from .steps import definition_of, retry_policy, step_at
from .transitions import back_off, due, give_up

log = logging.getLogger(__package__)  # one logger for the engine, whichever module writes

DEFAULT_REPLY_TIMEOUT = 30.0  # seconds a step without a timeout waits for a remote reply


def await_reply(
    saga: SagaInstance, step: Step[Any], row: SagaStep, waiting: participants.AwaitingReply, runtime: Runtime
) -> bool:
    """The step called a remote participant: send the command (the step's own changes were
    rolled back with its savepoint) and wait; the reply runs the step again."""
    now = runtime.clock.now()
    participants.send_command(waiting, key=saga.aggregate_id, correlation_id=saga.id)
    sent = {"command": waiting.command, "command_id": str(waiting.command_id)}
    finish(row, SagaStep.Status.SENT, runtime, result=sent)
    saga.status = SagaStatus.WAITING
    saga.timer_at = now + timedelta(seconds=step.timeout or DEFAULT_REPLY_TIMEOUT)
    saga.wake_at = due(saga, saga.timer_at)
    save(saga)
    return False


@log_scope
def deliver_reply(saga_id: UUID, command_id: UUID, ok: bool, payload: dict, runtime: Runtime) -> bool:
    """A remote participant answered. If the saga waits for this very command (its step and
    attempt: command ids name both), keep the reply and run the step again; a late or repeated
    reply is only logged (the inbox keeps its id) and changes nothing. False when ignored."""
    with transaction.atomic():
        saga = locked(saga_id)
        if not _awaits(saga, definition_of(saga), command_id):
            log.info("saga %s: ignored a reply to command %s it is not waiting for", saga_id, command_id)
            return False
        saga.data.setdefault(participants.REPLIES_KEY, {})[str(command_id)] = {"ok": ok, "payload": payload}
        _resume(saga, runtime)
        saga.attempts -= 1  # the run after the reply is the attempt that sent the command, counted again
        save_and_schedule(saga, runtime)
        return True


def _awaits(saga: SagaInstance, definition: SagaDefinition, command_id: UUID) -> bool:
    """Is the saga paused at a step whose last move was sending this very command?"""
    if saga.status != SagaStatus.WAITING or isinstance(definition.steps[saga.step_index], Wait):
        return False
    last = saga.steps.order_by("-id").values_list("status", "result").first()
    return last is not None and last[0] == SagaStep.Status.SENT and (last[1] or {}).get("command_id") == str(command_id)


def reply_timed_out(saga: SagaInstance, definition: SagaDefinition[Any], runtime: Runtime) -> bool:
    step = step_at(definition, saga.step_index)
    _resume(saga, runtime)
    kind = SagaStep.Kind.ACTION if saga.direction == Direction.FORWARD else SagaStep.Kind.COMPENSATION
    policy = retry_policy(step, kind)
    saga.error = f"{step.name}: no reply from the participant in time"
    if policy.exhausted(saga.attempts):
        return give_up(saga, definition, step, kind, saga.error, runtime)
    back_off(saga, policy.backoff(saga.attempts, runtime.rng), runtime)
    return False


def _resume(saga: SagaInstance, runtime: Runtime) -> None:
    saga.status = SagaStatus.COMPENSATING if saga.direction == Direction.BACKWARD else SagaStatus.STARTED
    saga.timer_at = None
    saga.wake_at = runtime.clock.now() + timedelta(seconds=runtime.stall_after)
