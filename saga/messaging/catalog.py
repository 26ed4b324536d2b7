"""The catalog of messages: every type the project sends or reads, declared once by the app that
owns it, with its context (the topic's first half) and what its payload carries.

Topics follow from it (`<context>_events`, `<context>_commands`), so the relay creates exactly
the topics the apps declared, `publish` refuses an undeclared type (a typo fails the first test
that sends it, naming the fix), and the event table of the README is rendered from it
(`manage.py message_catalog`) and checked against it by a test.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from saga.core.conf import saga_settings

from .messages import Message, message_fields

EVENTS = "events"
COMMANDS = "commands"


class UndeclaredMessage(LookupError):
    """A message type no app declared."""


@dataclass(frozen=True)
class MessageType:
    type: str  # "order.created"
    context: str  # "order": it travels on order_events (or order_commands)
    kind: str  # EVENTS or COMMANDS
    payload: str  # what the payload carries, for people
    inbound: bool = False  # read by the consumer
    sent: bool = True  # sent by an app of this project (through the outbox and the relay)

    @property
    def role(self) -> str:
        return f"{self.context}_{self.kind}"


class Catalog:
    def __init__(self) -> None:
        self._types: dict[str, MessageType] = {}

    def declare(self, context: str, messages: "Declared", *, kind: str = EVENTS, inbound: bool = False) -> None:
        for type, payload in _described(messages).items():
            declared = MessageType(type, context, kind, payload, inbound=inbound, sent=not inbound)
            known = self._types.get(type)
            self._types[type] = declared if known is None else _both(known, declared)

    def get(self, type: str) -> MessageType:
        try:
            return self._types[type]
        except KeyError:
            raise UndeclaredMessage(
                f"no app declared the message {type!r}: add it to its context's messages with "
                "messages_declare(...) in the app's ready()"
            ) from None

    def types(self) -> list[MessageType]:
        """By topic; within a topic, in the order their app declared them."""
        return sorted(self._types.values(), key=lambda m: m.role)

    def roles(self, *, inbound: bool | None = None) -> list[str]:
        """Topic roles, e.g. ["order_events", "payment_commands"]; only inbound (or outbound) ones if asked."""
        return sorted({m.role for m in self._types.values() if inbound is None or (m.inbound if inbound else m.sent)})

    def shared_roles(self) -> list[str]:
        """Topics the project both sends on and reads from: there the consumer ignores the types
        it has no handler for (the sender's other messages)."""
        return sorted(set(self.roles(inbound=True)) & set(self.roles(inbound=False)))

    def table(self) -> str:
        """The message table as Markdown (the README shows this very text): what the project sends,
        and what it reads from outside (a type it both sends and reads is shown as its sender's,
        so the table is the same whichever handlers the configuration registers)."""
        rows = ["| topic | type | payload |", "|---|---|---|"]
        previous = None
        for message in self.types():
            inbound = " (read by `consume_events`)" if not message.sent else ""
            topic = "" if message.role == previous else f"`{message.role}`{inbound}"
            previous = message.role
            rows.append(f"| {topic} | `{message.type}` | {message.payload or '-'} |")
        return "\n".join(rows)


Declared = Mapping[str, str] | Iterable[type[Message]]
"""Message classes (see messages.py), or types with what their payloads carry in words."""


def _described(messages: Declared) -> dict[str, str]:
    if isinstance(messages, Mapping):
        return dict(messages)
    return {cls.TYPE: message_fields(cls) for cls in messages}


def _both(known: MessageType, declared: MessageType) -> MessageType:
    """One type declared twice: the same declaration again, or its sender's and a reader's in
    this project (a context keeping a copy of another's data from its events). Two senders, or
    two readers, must agree."""
    if known.role != declared.role or (known.sent == declared.sent and known.payload != declared.payload):
        raise ValueError(f"message {known.type} is declared twice, differently: {known} and {declared}")
    sender = known if known.sent else declared
    return replace(sender, inbound=known.inbound or declared.inbound, sent=known.sent or declared.sent)


# Filled at start-up (AppConfig.ready), read-only afterwards.
catalog = Catalog()


def topic_for(role: str) -> str:
    """The topic of a role: its name in the KAFKA_TOPICS setting, or the role itself."""
    return saga_settings.KAFKA_TOPICS.get(role, role)
