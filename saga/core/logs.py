"""Every log record made while a saga, a request or a message is being handled carries its ids as
attributes (record.saga_id, record.aggregate_id, record.step, record.attempt, record.request_id),
whatever logger made it and whichever handler (or test's capture) receives it: the engine installs
a log record factory once (SagaConfig.ready). Formatting is the project's business."""

import logging
from typing import Any

from saga.core.ids import IDS, current_ids

_installed = False


def install_record_factory() -> None:
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def record_with_ids(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        for name, value in current_ids().items():
            if name in IDS and not hasattr(record, name):
                setattr(record, name, value)
        return record

    logging.setLogRecordFactory(record_with_ids)
    _installed = True


def ids_of(record: logging.LogRecord) -> dict[str, Any]:
    """The ids a record carries, by their generic names."""
    return {name: getattr(record, name) for name in IDS if getattr(record, name, None) is not None}
