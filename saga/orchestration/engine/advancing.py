"""Advancing a saga as far as it can go now: at once, each step in one transaction; or, for a
saga suspected of killing its workers, with care: each attempt claimed, then run, by one
advancer at a time."""

import functools
from uuid import UUID

from django.db import DatabaseError, connection, transaction
from django.db.models import Q

from saga.core.connections import connection_error_lost, connection_lost
from saga.messaging import caused_by, published_together

from ..definition import DefinitionError
from ..models import SagaInstance, SagaStatus
from ..runtime import Runtime
from .attempt import attempt_now, run
from .claims import Claim, claim_attempt, connection_lost_during
from .decision import decide
from .failures import Position, StepFailed, hook_failed, record_failure
from .row import locked, log_scope


class NeedsCare(Exception):
    """The saga must be moved with care (claim, then run): raised before anything is done."""


@log_scope
def advance(saga_id: UUID, runtime: Runtime, *, suspect: bool = False) -> None:
    """Move the saga as far as it can go now: through every step, stopping at a wait, a backoff
    or its end. `suspect`: the doorbell came back from a worker that died (maybe in this saga's
    step), so the saga is moved with care."""
    if not suspect:
        try:
            with caused_by(saga_id, None):
                while advance_at_once(saga_id, runtime):
                    pass
            return
        except NeedsCare:
            pass  # nothing was done: the transaction that found out rolled back
    _advance_with_care(saga_id, runtime)


def advance_at_once(saga_id: UUID, runtime: Runtime) -> bool:
    """Take one step in one transaction. True if the saga moved and may move again at once."""
    try:
        with transaction.atomic(), published_together():
            saga = locked(saga_id)
            if saga.claimed or saga.crashes:
                raise NeedsCare
            return decide(saga, runtime, functools.partial(attempt_now, Position.of(saga)))
    except StepFailed as failure:
        return record_failure(saga_id, failure, runtime)
    except (DatabaseError, DefinitionError, NeedsCare):
        raise
    except Exception as error:  # noqa: BLE001 - a failing hook (when, on_enter, on_compensated)
        return hook_failed(saga_id, error, runtime)


def _advance_with_care(saga_id: UUID, runtime: Runtime) -> None:
    """Claim, then run, each attempt; returns at once if another careful advance is under way."""
    while True:
        with _AdvancerLock(saga_id) as mine, caused_by(saga_id, None):
            if not mine:
                return  # its holder re-checks the saga after letting go, so nothing is missed
            while advance_one(saga_id, runtime):
                pass
        if not _runnable(saga_id, runtime):
            return


def _runnable(saga_id: UUID, runtime: Runtime) -> bool:
    """Did something (an event, a cancel) make the saga movable while we held it?"""
    now = runtime.clock.now()
    moving = Q(status__in=[SagaStatus.STARTED, SagaStatus.COMPENSATING]) & (
        Q(retry_at__isnull=True) | Q(retry_at__lte=now)
    )
    expired = Q(status=SagaStatus.WAITING, timer_at__lte=now)
    return SagaInstance.objects.filter(moving | expired, pk=saga_id).exists()


def advance_one(saga_id: UUID, runtime: Runtime) -> bool:
    """Take one step with care. True if the saga moved and may move again at once."""
    try:
        claimed = claim(saga_id, runtime)
    except (DatabaseError, DefinitionError):
        raise  # the database is away, or this code lacks the saga's steps: the sweeper brings it back
    except Exception as error:  # noqa: BLE001 - a failing hook (when, on_enter, on_compensated)
        return hook_failed(saga_id, error, runtime)
    if not isinstance(claimed, Claim):
        return claimed
    try:
        return run(saga_id, claimed, runtime)
    except DatabaseError as error:
        if connection_error_lost(error):
            connection_lost_during(claimed)
        raise


def claim(saga_id: UUID, runtime: Runtime) -> Claim | bool:
    """The first transaction of a careful step: a Claim of the attempt to run, or, if the saga
    moved without running a step, True if it may move again at once."""
    with transaction.atomic():
        return decide(locked(saga_id), runtime, claim_attempt)


class _AdvancerLock:
    """A session advisory lock on the saga: one advancer at a time, released if its process dies."""

    def __init__(self, saga_id: UUID):
        self.key = str(saga_id)

    def __enter__(self) -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [self.key])
            self.acquired = cursor.fetchone()[0]
        return self.acquired

    def __exit__(self, *exc_info: object) -> None:
        if self.acquired and not connection_lost():  # a lost session took its lock with it
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [self.key])
