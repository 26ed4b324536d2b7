"""What every message carries about why it exists: the conversation it belongs to (correlation id)
and the message or command that caused it (causation id).

Both live in context variables, not globals. An HTTP request gets a correlation id from its
`X-Correlation-ID` header (or a fresh one, echoed on the response) through the middleware; the
saga engine sets the saga's id and the running command's id while a step runs.
"""

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from uuid import UUID

from django.http import HttpRequest, HttpResponse

HEADER = "X-Correlation-ID"
_request: ContextVar[str | None] = ContextVar("correlation_id", default=None)


@dataclass(frozen=True)
class Cause:
    correlation_id: UUID | None
    causation_id: UUID | None


_cause: ContextVar[Cause | None] = ContextVar("message_cause", default=None)


def current_correlation_id() -> str | None:
    """The id of the request being served, if any."""
    return _request.get()


def current_cause() -> Cause:
    return _cause.get() or Cause(None, None)


@contextmanager
def caused_by(correlation_id: UUID | None, causation_id: UUID | None) -> Iterator[None]:
    """Messages published inside name this conversation and this cause."""
    token = _cause.set(Cause(correlation_id, causation_id))
    try:
        yield
    finally:
        _cause.reset(token)


def _parse(value: str | None) -> str:
    try:
        return str(uuid.UUID(value)) if value else str(uuid.uuid4())
    except ValueError:
        return str(uuid.uuid4())


class CorrelationIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _request.set(_parse(request.headers.get(HEADER)))
        try:
            response = self.get_response(request)
            response[HEADER] = _request.get() or ""
            return response
        finally:
            _request.reset(token)
