"""The request id travels with every Celery task published while it is bound (a message header),
and is bound again while the task runs; the engine adds the saga's ids from the saga itself."""

import contextlib
from typing import Any

from celery import signals

from saga.core.ids import bound, current_request_id

HEADER = "request_id"
_scopes: dict[str, Any] = {}


def _before_publish(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    request_id = current_request_id()
    if headers is not None and request_id and HEADER not in headers:
        headers[HEADER] = request_id


def _prerun(task_id: str | None = None, task: Any = None, **kwargs: Any) -> None:
    request = getattr(task, "request", None)
    request_id = getattr(request, HEADER, None) or (getattr(request, "headers", None) or {}).get(HEADER)
    if task_id is None or not request_id:
        return
    scope = bound(request_id=str(request_id))
    scope.__enter__()
    _scopes[task_id] = scope


def _postrun(task_id: str | None = None, **kwargs: Any) -> None:
    scope = _scopes.pop(task_id or "", None)
    if scope is not None:
        # ended in another context than it began: nothing of it is left here
        with contextlib.suppress(ValueError):
            scope.__exit__(None, None, None)


def connect() -> None:
    signals.before_task_publish.connect(_before_publish, weak=False, dispatch_uid="saga-request-id-publish")
    signals.task_prerun.connect(_prerun, weak=False, dispatch_uid="saga-request-id-prerun")
    signals.task_postrun.connect(_postrun, weak=False, dispatch_uid="saga-request-id-postrun")
