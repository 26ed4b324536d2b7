"""What every message carries about why it exists: the saga it belongs to (the envelope's
correlation id, which is the saga's id) and the message or command that caused it (causation id);
and what every log line carries: the id of the HTTP request behind it (request_id).

All live in context variables, not globals. An HTTP request gets a request id from its
`X-Request-ID` header (or `X-Correlation-ID`, still accepted from older clients; a fresh one when
neither holds a UUID), echoed as `X-Request-ID` on the response, through the middleware; the saga
engine sets the saga's id and the running command's id while a step runs.
"""

import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from uuid import UUID

from django.http import HttpRequest, HttpResponse

from saga.core.ids import bound, current_request_id

HEADER = "X-Request-ID"
ACCEPTED_HEADERS = (HEADER, "X-Correlation-ID")

log = logging.getLogger("saga.http")


@dataclass(frozen=True)
class Cause:
    correlation_id: UUID | None
    causation_id: UUID | None


_cause: ContextVar[Cause | None] = ContextVar("message_cause", default=None)

__all__ = ["HEADER", "Cause", "RequestIdMiddleware", "caused_by", "current_cause", "current_request_id"]


def current_cause() -> Cause:
    return _cause.get() or Cause(None, None)


@contextmanager
def caused_by(correlation_id: UUID | None, causation_id: UUID | None) -> Iterator[None]:
    """Messages published inside name this saga (conversation) and this cause."""
    token = _cause.set(Cause(correlation_id, causation_id))
    try:
        yield
    finally:
        _cause.reset(token)


def parse_request_id(value: str | None) -> str:
    """A UUID given by the client, or a fresh one (nothing else reaches the logs or the headers)."""
    try:
        return str(uuid.UUID(value)) if value else str(uuid.uuid4())
    except ValueError:
        return str(uuid.uuid4())


class RequestIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        given = next((request.headers[name] for name in ACCEPTED_HEADERS if request.headers.get(name)), None)
        request_id = parse_request_id(given)
        started = time.monotonic()
        with bound(request_id=request_id):
            response = self.get_response(request)
            response[HEADER] = request_id
            log.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={"duration_ms": round((time.monotonic() - started) * 1000, 1)},
            )
            return response


# The name settings have used so far.
CorrelationIdMiddleware = RequestIdMiddleware
