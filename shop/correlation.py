"""Correlation ids: one id follows a request through the saga, its tasks and its messages.

The id lives in a context variable (not a global), set from the `X-Correlation-ID` header or
made fresh, and echoed back on the response.
"""
import uuid
from contextvars import ContextVar
from typing import Callable

from django.http import HttpRequest, HttpResponse

HEADER = "X-Correlation-ID"
_current: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def current_correlation_id() -> str | None:
    return _current.get()


def _parse(value: str | None) -> str:
    try:
        return str(uuid.UUID(value)) if value else str(uuid.uuid4())
    except ValueError:
        return str(uuid.uuid4())


class CorrelationIdMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _current.set(_parse(request.headers.get(HEADER)))
        try:
            response = self.get_response(request)
            response[HEADER] = _current.get()
            return response
        finally:
            _current.reset(token)
