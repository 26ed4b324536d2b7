"""The ids of what the current code is doing, in a context variable: the HTTP request (request_id),
and the saga being advanced with its aggregate, step and attempt. `bound` opens a scope (the
middleware, a Celery task, the consumer, the engine's entry points); `note_saga` fills the saga's
ids into the innermost scope whenever the engine locks the saga's row. logs.ContextFilter copies
them onto every log record, and `publish` stores the request id with each outbox message."""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol
from uuid import UUID

IDS = ("request_id", "saga_id", "aggregate_id", "step", "attempt")

_ids: ContextVar[dict[str, str | int] | None] = ContextVar("saga_log_ids", default=None)


class SagaLike(Protocol):
    id: UUID
    aggregate_id: UUID
    correlation_id: UUID  # the column holding the request id of the saga (see SagaInstance)
    current_step: str
    attempts: int


def current_ids() -> Mapping[str, str | int]:
    return _ids.get() or {}


def current_request_id() -> str | None:
    value = current_ids().get("request_id")
    return str(value) if value else None


@contextmanager
def bound(**ids: str | int | UUID | None) -> Iterator[None]:
    """Within: the given ids (None ones are left as they were) over those of the enclosing scope."""
    merged = dict(current_ids())
    merged.update({name: _plain(value) for name, value in ids.items() if value is not None})
    token = _ids.set(merged)
    try:
        yield
    finally:
        _ids.reset(token)


def note_saga(saga: SagaLike) -> None:
    """Set the saga's ids in the current scope. Outside any scope (`bound`) it does nothing: a
    scope set here would outlive the caller and name this saga on the lines of whatever the
    thread does next."""
    ids = _ids.get()
    if ids is None:
        return
    ids.update(
        saga_id=str(saga.id),
        aggregate_id=str(saga.aggregate_id),
        step=saga.current_step,
        attempt=saga.attempts,
        request_id=str(saga.correlation_id),
    )


def _plain(value: str | int | UUID) -> str | int:
    return str(value) if isinstance(value, UUID) else value
