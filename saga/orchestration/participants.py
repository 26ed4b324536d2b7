"""Participants: contexts whose commands a saga step calls through `ctx.call(...)`.

A participant is local by default: the call is a function call in the worker, in the step's
transaction. Named in SAGA_REMOTE_PARTICIPANTS, it is remote: the call writes the command to the
outbox (its `<context>_commands` topic) and the step pauses; the participant's process
(`manage.py run_participant NAME`) runs it and replies on its `<context>_events` topic with
`<command>.succeeded` or `<command>.failed` (causation_id = the command id); the consumer hands the
reply to the saga, and the step runs again, this time getting the reply. Everything else the step
does is idempotent, so running it again is safe. The saga definition is the same either way.

Command arguments and results are JSON objects, so both ways behave alike.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any
from uuid import UUID

from django.db import InterfaceError, OperationalError, transaction

from saga.core.conf import saga_settings
from saga.core.ids import bound

from ..messaging import COMMANDS, caused_by, messages_declare, publish
from ..messaging.inbox import Envelope, Handlers, MalformedMessage
from .definition import StepContext
from .models import ProcessedCommand

REPLIES_KEY = "_replies"  # replies of remote participants, by command id, in the saga's data
Command = Callable[..., dict[str, Any]]


@dataclass(frozen=True)
class Participant:
    name: str  # e.g. "payments", as in SAGA_REMOTE_PARTICIPANTS and run_participant
    context: str  # e.g. "payment": its topics are payment_commands and payment_events
    commands: dict[str, Command]  # e.g. "payment.authorize" -> function(**args) -> result


class AwaitingReply(Exception):
    """Raised inside a step by a call to a remote participant that has not replied yet."""

    def __init__(self, participant: Participant, command: str, command_id: UUID, args: dict[str, Any]):
        super().__init__(f"waiting for {participant.name} to reply to {command}")
        self.participant, self.command, self.command_id, self.arguments = participant, command, command_id, args


class RemoteCommandFailed(Exception):
    """A remote participant replied that the command failed; the step retries by its policy."""

    def __init__(self, command_id: UUID, error: str):
        super().__init__(error)
        self.command_id = command_id


class Participants:
    def __init__(self) -> None:
        self._by_name: dict[str, Participant] = {}

    def register(self, participant: Participant) -> None:
        self._by_name[participant.name] = participant
        # Its commands travel on <context>_commands, its replies on <context>_events.
        messages_declare(
            participant.context, dict.fromkeys(participant.commands, "command_id, key, args"), kind=COMMANDS
        )
        replies = {f"{c}.succeeded": "the command's result" for c in participant.commands}
        messages_declare(participant.context, {**replies, **{f"{c}.failed": "error" for c in participant.commands}})

    def get(self, name: str) -> Participant:
        try:
            return self._by_name[name]
        except KeyError:
            raise LookupError(f"no participant named {name!r} is registered") from None

    def all(self) -> list[Participant]:
        return list(self._by_name.values())

    def remote(self) -> list[Participant]:
        return [self.get(name) for name in saga_settings.SAGA_REMOTE_PARTICIPANTS]


# Filled at start-up (AppConfig.ready), read-only afterwards.
participants = Participants()


def call(ctx: StepContext, name: str, command: str, args: dict[str, Any]) -> dict[str, Any]:
    """What `StepContext.call` does."""
    participant = participants.get(name)
    if name not in saga_settings.SAGA_REMOTE_PARTICIPANTS:
        return participant.commands[command](**args)
    # One id per step, command and attempt: a late reply to an earlier attempt is told apart.
    command_id = ctx.command_id(f"{ctx.step}:{command}:{ctx.attempt}", ctx.kind)
    reply = ctx.data.get(REPLIES_KEY, {}).get(str(command_id))
    if reply is None:
        raise AwaitingReply(participant, command, command_id, args)
    if not reply["ok"]:
        raise RemoteCommandFailed(command_id, reply["payload"].get("error", "the participant failed"))
    return reply["payload"]


def send_command(waiting: AwaitingReply, *, key: UUID, correlation_id: UUID) -> None:
    publish(
        type=waiting.command,
        key=key,
        payload={"command_id": str(waiting.command_id), "key": str(key), "args": waiting.arguments},
        correlation_id=correlation_id,
        causation_id=waiting.command_id,
    )


def reply_types(participant: Participant) -> list[str]:
    return [f"{command}.{outcome}" for command in participant.commands for outcome in ("succeeded", "failed")]


# --- the participant's side: `manage.py run_participant NAME` ---------------------------------


def command_handlers(participant: Participant) -> Handlers:
    """Handlers that serve the participant's commands from Kafka and reply through the outbox."""
    served = Handlers()
    for command, function in participant.commands.items():
        served.register(command, partial(_serve, participant, command, function))
    return served


def _run_once(
    participant: Participant, command: str, function: Command, command_id: UUID, args: dict[str, Any]
) -> tuple[dict[str, Any], str]:
    done = ProcessedCommand.objects.filter(pk=command_id).first()
    if done is not None:
        return done.result, "succeeded"
    try:
        with transaction.atomic():
            result = function(**args)
            ProcessedCommand.objects.create(
                command_id=command_id, participant=participant.name, command=command, result=result
            )
            return result, "succeeded"
    except (OperationalError, InterfaceError):
        raise  # not the command's fault: the message comes again
    except Exception as error:  # noqa: BLE001 - the saga decides, by its retry policy
        return {"error": f"{type(error).__name__}: {error}"}, "failed"


def _serve(participant: Participant, command: str, function: Command, message: Envelope) -> None:
    command_id = message.uuid_field("command_id")
    args = message.field("args")
    if not isinstance(args, dict):
        raise MalformedMessage(f"{command}: args is not an object")
    with caused_by(message.correlation_id, command_id), bound(saga_id=message.correlation_id, step=command):
        result, outcome = _run_once(participant, command, function, command_id, args)
        publish(
            type=f"{command}.{outcome}",
            key=message.field("key"),
            payload=result,
            correlation_id=message.correlation_id,
            causation_id=command_id,
        )
