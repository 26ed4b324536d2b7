"""Participants: contexts whose commands saga steps call, typed, one class per command and reply:

    INVENTORY = Participant(name="inventory", context="inventory")
    reserve = INVENTORY.command(ReserveStock, StockReply, serve_reserve)   # in the context
    reply = inventory.reserve(s, ReserveStock(order_id=..., lines=...))    # in a saga step

A participant is local by default: the call is a function call in the worker, in the step's
transaction. Named in SAGA_REMOTE_PARTICIPANTS, it is remote: the call writes the command to the
outbox (its `<context>_commands` topic) and the step pauses; the participant's process
(`manage.py run_participant NAME`) runs it and replies on its `<context>_events` topic with
`<command>.succeeded` or `<command>.failed` (causation_id = the command id); the consumer hands the
reply to the saga, and the step runs again, this time getting the reply. Everything else the step
does is idempotent, so running it again is safe. The saga definition is the same either way, and
so are the classes: a remote call sends the command's fields as JSON and reads the reply back.
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Generic, TypeVar
from uuid import UUID

from django.db import InterfaceError, OperationalError, transaction

from saga.core.conf import saga_settings
from saga.core.ids import bound

from ..messaging import (
    COMMANDS,
    Message,
    caused_by,
    message_from,
    message_payload,
    messages_declare,
    publish,
)
from ..messaging.inbox import Envelope, Handlers
from ..messaging.messages import message_fields
from .definition import StepContext
from .models import ProcessedCommand

REPLIES_KEY = "_replies"  # replies of remote participants, by command id, in the saga's data
A = TypeVar("A", bound=Message)  # a command's class
R = TypeVar("R")  # the class of its reply


@dataclass(frozen=True, eq=False)
class ParticipantCommand(Generic[A, R]):
    """One command of a participant: called in a step as `command(s, arguments) -> reply`."""

    participant: "Participant"
    arguments: type[A]
    reply: type[R]
    handler: Callable[[A], R]

    @property
    def type(self) -> str:
        return self.arguments.TYPE

    def __call__(self, s: StepContext[Any], arguments: A) -> R:
        return call(s, self, arguments)

    def read(self, args: Mapping[str, Any]) -> A:
        """The command's arguments, from the JSON a remote caller sent (raises UnreadablePayload)."""
        return message_from(self.arguments, args)

    def answer(self, arguments: A) -> dict[str, Any]:
        """Run the command and give its reply as JSON: what the participant's process sends back."""
        return message_payload(self.handler(arguments))


@dataclass(frozen=True, eq=False)
class Participant:
    name: str  # e.g. "payments", as in SAGA_REMOTE_PARTICIPANTS and run_participant
    context: str  # e.g. "payment": its topics are payment_commands and payment_events
    commands: dict[str, ParticipantCommand[Any, Any]] = field(default_factory=dict)

    def command(self, arguments: type[A], reply: type[R], handler: Callable[[A], R]) -> ParticipantCommand[A, R]:
        """Declare a command: its class (naming its type), its reply's class, and what serves it."""
        command = ParticipantCommand(self, arguments, reply, handler)
        self.commands[command.type] = command
        return command


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
        commands = participant.commands.values()
        messages_declare(participant.context, [c.arguments for c in commands], kind=COMMANDS)
        replies = {f"{c.type}.succeeded": message_fields(c.reply) for c in commands}
        messages_declare(participant.context, {**replies, **{f"{c.type}.failed": "error" for c in commands}})

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


def call(ctx: StepContext[Any], command: ParticipantCommand[A, R], arguments: A) -> R:
    """What calling a command in a step does: run it here, or send it and pause for the reply."""
    participant = command.participant
    if participant.name not in saga_settings.SAGA_REMOTE_PARTICIPANTS:
        return command.handler(arguments)
    # One id per step, command and attempt: a late reply to an earlier attempt is told apart.
    command_id = ctx.command_id(f"{ctx.step}:{command.type}:{ctx.attempt}", ctx.kind)
    reply = ctx.data.get(REPLIES_KEY, {}).get(str(command_id))
    if reply is None:
        raise AwaitingReply(participant, command.type, command_id, message_payload(arguments))
    if not reply["ok"]:
        raise RemoteCommandFailed(command_id, reply["payload"].get("error", "the participant failed"))
    return message_from(command.reply, reply["payload"])


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
    for type, command in participant.commands.items():
        served.register(type, partial(_serve, command))
    return served


def _run_once(command: ParticipantCommand[Any, Any], command_id: UUID, args: Any) -> tuple[dict[str, Any], str]:
    done = ProcessedCommand.objects.filter(pk=command_id).first()
    if done is not None:
        return done.result, "succeeded"
    try:
        with transaction.atomic():
            result = command.answer(command.read(args))  # arguments it cannot read: a failed reply
            ProcessedCommand.objects.create(
                command_id=command_id, participant=command.participant.name, command=command.type, result=result
            )
            return result, "succeeded"
    except (OperationalError, InterfaceError):
        raise  # not the command's fault: the message comes again
    except Exception as error:  # noqa: BLE001 - the saga decides, by its retry policy
        return {"error": f"{type(error).__name__}: {error}"}, "failed"


def _serve(command: ParticipantCommand[Any, Any], message: Envelope) -> None:
    command_id = message.uuid_field("command_id")
    args = message.field("args")
    with caused_by(message.correlation_id, command_id), bound(saga_id=message.correlation_id, step=command.type):
        result, outcome = _run_once(command, command_id, args)
        publish(
            type=f"{command.type}.{outcome}",
            key=message.field("key"),
            payload=result,
            correlation_id=message.correlation_id,
            causation_id=command_id,
        )
