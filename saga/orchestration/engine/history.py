"""The saga's history: a SagaStep row for each attempt of an action or compensation, each step
passed over and each wait, with its timings and error (what the admin shows)."""

import logging
import traceback
from datetime import datetime

from saga.core.ids import bound
from saga.core.rows import rows_insert

from ..models import SagaInstance, SagaStep
from ..runtime import Runtime

log = logging.getLogger(__package__)  # one logger for the engine, whichever module writes


def record(
    saga: SagaInstance,
    name: str,
    kind: str,
    status: str,
    now: datetime,
    *,
    finished: bool = True,
    result: object = None,
    worker: str = "",
) -> SagaStep:
    return SagaStep.objects.create(
        saga=saga,
        worker=worker,
        name=name,
        kind=kind,
        status=status,
        attempt=max(saga.attempts, 1),
        started_at=now,
        finished_at=now if finished else None,
        result=result,
    )


def attempt_row(saga: SagaInstance, name: str, kind: str, started_at: datetime) -> SagaStep:
    """The attempt's history row, written when it finishes (see finish)."""
    return SagaStep(
        saga=saga, name=name, kind=kind, status=SagaStep.Status.RUNNING, attempt=saga.attempts, started_at=started_at
    )


def finish(row: SagaStep, status: str, runtime: Runtime, *, error: str = "", result: object = None) -> None:
    """Finish an attempt: its claimed row, or the row of an attempt run at once, written now."""
    row.status = status
    row.error = error
    row.finished_at = runtime.clock.now()
    if result is not None:
        row.result = result
    if row.pk is None:
        rows_insert([row])
    else:
        row.save(update_fields=["status", "error", "finished_at", "result"])
    seconds = (row.finished_at - row.started_at).total_seconds()
    # The line names this attempt: the saga's own count may have moved on (a failure is recorded
    # in the transaction after the step's).
    with bound(step=row.name, attempt=row.attempt):
        if status == SagaStep.Status.FAILED:
            log.warning("%s %s attempt %d: FAILED in %.3fs: %s", row.kind, row.name, row.attempt, seconds, error)
        else:
            log.info("%s %s attempt %d: %s in %.3fs", row.kind, row.name, row.attempt, status, seconds)


def finish_running(saga: SagaInstance, status: str, now: datetime, *, error: str = "", result: object = None) -> None:
    saga.claimed = False
    saga.steps.filter(status=SagaStep.Status.RUNNING).update(status=status, finished_at=now, error=error, result=result)


def described(error: BaseException) -> str:
    """An error as the history and the saga's row show it."""
    return "".join(traceback.format_exception_only(error)).strip()
