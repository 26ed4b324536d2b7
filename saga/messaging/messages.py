"""Messages as declared classes: one frozen dataclass per message type, naming its type in `TYPE`,
so a payload is built and read as that class on both sides of Kafka and mypy follows it:

    @dataclass(frozen=True)
    class FundsHeld:
        TYPE: ClassVar[str] = "funds.held"
        order_id: UUID
        amount: Decimal

    publish_message(FundsHeld(order_id=..., amount=...), key=order_id)     # the producer
    held = envelope.message(FundsHeld)                                      # the consumer

On the wire the payload is the dataclass's fields as JSON: ids, decimals and times as text,
tuples as lists, nested dataclasses as objects (msgspec converts both ways)."""

from collections.abc import Mapping
from dataclasses import fields
from typing import Any, ClassVar, Protocol, TypeVar

import msgspec


class Message(Protocol):
    """A declared message: a dataclass with its type name."""

    TYPE: ClassVar[str]
    __dataclass_fields__: ClassVar[dict[str, Any]]


M = TypeVar("M")


class UnreadablePayload(ValueError):
    """A payload that is not the message it says it is."""


def message_payload(message: object) -> dict[str, Any]:
    """The message's fields as JSON values."""
    payload = msgspec.to_builtins(message)
    assert isinstance(payload, dict), f"{type(message).__name__} is not a dataclass"
    return payload


def message_from(cls: type[M], payload: Mapping[str, Any]) -> M:
    """The payload read as `cls`; fields it does not know are ignored (a newer sender's)."""
    try:
        return msgspec.convert(payload, cls)
    except msgspec.ValidationError as error:
        raise UnreadablePayload(f"not a {cls.__name__}: {error}") from error


def message_fields(cls: type) -> str:
    """What a message carries, for people (the catalog's table)."""
    return ", ".join(field.name for field in fields(cls))
