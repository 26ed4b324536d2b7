"""The shop's log format: one JSON object a line in production (LOG_FORMAT=json, the default with
DJANGO_ENV=production), aligned readable lines in development (LOG_FORMAT=console).

Every line made while a request, a saga or a consumed message is handled carries its ids (the
engine puts them on each log record: saga/core/logs.py): request_id, saga_id, order_id
(the engine's aggregate_id: a saga of this shop is about an order), step and attempt.

An error's traceback is printed as Python prints it, without local variables: structlog's
defaults (rich's or better-exceptions' tracebacks, dict tracebacks) show every local of every
frame, thousands of lines and seconds of rendering for one error in a view of the admin."""

import logging
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from saga.core.ids import IDS

RENAMED = {"aggregate_id": "order_id"}
EXTRAS = ("duration_ms",)


def add_ids(logger: WrappedLogger, method: str, event: EventDict) -> EventDict:
    record: logging.LogRecord | None = event.get("_record")
    if record is not None:
        for name in (*IDS, *EXTRAS):
            value = getattr(record, name, None)
            if value is not None:
                event[RENAMED.get(name, name)] = value
    return event


def _chain() -> list[Processor]:
    return [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        add_ids,
    ]


def json_formatter(**kwargs: Any) -> structlog.stdlib.ProcessorFormatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_chain(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # `exception`: the traceback as Python prints it
            structlog.processors.JSONRenderer(sort_keys=False),
        ],
    )


def console_formatter(**kwargs: Any) -> structlog.stdlib.ProcessorFormatter:
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=_chain(),
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback),
        ],
    )
