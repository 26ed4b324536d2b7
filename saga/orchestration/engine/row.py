"""The saga's row: every transaction of the engine locks it first and writes it back last."""

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar
from uuid import UUID

from django.db import OperationalError, connection, transaction

from saga.core.conf import saga_settings
from saga.core.connections import lock_not_available
from saga.core.ids import bound, note_saga
from saga.core.rows import rows_update

from ..models import SagaInstance
from ..runtime import Runtime

P = ParamSpec("P")
R = TypeVar("R")


def log_scope(function: Callable[P, R]) -> Callable[P, R]:
    """Log lines inside carry the ids of the saga being handled (set whenever its row is locked),
    and none of them leak to what the caller does next."""

    @functools.wraps(function)
    def scoped(*args: P.args, **kwargs: P.kwargs) -> R:
        with bound():
            return function(*args, **kwargs)

    return scoped


class SagaBusy(OperationalError):
    """Another session held the saga's row past SAGA_LOCK_TIMEOUT (a long step, or a vanished
    worker's session the server has not ended yet): nothing was done, try again shortly. A
    database error, as the lock timeout under it is: a consumer gets its message again."""


def locked(saga_id: UUID) -> SagaInstance:
    # Every transaction starts here: written out, the ORM does not build it each time.
    found = list(
        SagaInstance.objects.raw(f"SELECT * FROM {SagaInstance._meta.db_table} WHERE id = %s FOR UPDATE", [saga_id])
    )
    if not found:
        raise SagaInstance.DoesNotExist(f"no saga {saga_id}")
    note_saga(found[0])
    return found[0]


# What a transaction of the engine may change in a saga's row: all but what it was started with.
_MOVING = [
    field
    for field in SagaInstance._meta.concrete_fields
    if field.name not in ("id", "type", "version", "aggregate_id", "correlation_id", "created_at")
]


@contextmanager
def waiting_briefly(saga_id: UUID) -> Iterator[None]:
    """The transaction of a request that locks a saga's row (a signal, a cancel): it waits for
    another session's lock SAGA_LOCK_TIMEOUT seconds at most, then raises SagaBusy, instead of
    hanging while a step runs or until the server ends a vanished worker's session. Inside a
    caller's transaction (the consumer's), the caller's own lock timeout is back after it."""
    try:
        with transaction.atomic():
            callers = _set_lock_timeout(f"{round(saga_settings.SAGA_LOCK_TIMEOUT * 1000)}ms")
            yield
            _set_lock_timeout(callers)
    except OperationalError as error:
        if not lock_not_available(error):
            raise
        raise SagaBusy(f"saga {saga_id} is busy (another session holds it); try again shortly") from error.__cause__


def _set_lock_timeout(value: str) -> str:
    """Set the lock timeout until the transaction (or its savepoint) ends; the one it replaces."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)", [value])
        return cursor.fetchone()[0]


def save(saga: SagaInstance) -> None:
    """Write the saga's progress (every transaction of every saga ends with it)."""
    rows_update(saga, _MOVING)


def save_and_schedule(saga: SagaInstance, runtime: Runtime) -> None:
    save(saga)
    runtime.schedule(saga.id, 0)
