"""The doorbell, both ends: rung by the production runtime after the transaction commits, and
answered by a worker (the advance_saga task). One module, as each end needs the other: the task
advances the saga with the runtime that rings it.

PostgreSQL is the ledger: a doorbell that cannot be rung at once (Redis frozen, failing over,
away) does not hold the transaction's caller. Its saga is made due for the sweeper, which rings it
once Redis answers again; for a few seconds after such a failure, a process does not even try.
No doorbell is spent on a dead database connection (see on_live_task); if the database stays
away, advance_saga rings again later, and after a few times leaves the saga to the sweeper."""

import logging
import time
from uuid import UUID

from celery import Task, shared_task
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from saga.core.conf import saga_settings
from saga.core.connections import on_live_task

from . import engine
from .doorbells import Doorbells, doorbells_of
from .models import SagaInstance
from .runtime import Faults, NoFaults, Runtime

log = logging.getLogger(__name__)

# Longer timers are left to the sweeper: a long Celery countdown sits in the worker's memory and
# outlives the Redis visibility timeout.
MAX_COUNTDOWN_SECONDS = 60

# After failing to reach the broker, leave doorbells to the sweeper for this long.
BROKER_PAUSE_SECONDS = 5.0
_broker_paused_until = 0.0

# Faults put into every step this process runs: none, unless a test harness injects them.
_injected_faults: Faults = NoFaults()

# While the database is away, advance_saga rings again after these many seconds (doubling up to the
# last), a few times; after that the sweeper finds the saga when the database is back.
RING_AGAIN_AFTER = (1, 2, 4, 8, 16)


def _ring_again_later(error: BaseException, self: Task, saga_id: str, rung: int | None = None) -> None:
    """advance_saga's answer while the database stays away (`self`: the task, as Celery binds it)."""
    if self.request.retries >= len(RING_AGAIN_AFTER):
        log.warning("database still unavailable; saga %s is left to the sweeper: %s", saga_id, error)
        return
    delay = RING_AGAIN_AFTER[self.request.retries]
    log.warning("database unavailable; ringing again for saga %s in %d s: %s", saga_id, delay, error)
    raise self.retry(countdown=delay) from error


@shared_task(
    bind=True,
    name="saga.tasks.advance_saga",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=len(RING_AGAIN_AFTER),
)
@on_live_task(_ring_again_later)
def advance_saga(self: Task, saga_id: str, rung: int | None = None) -> None:
    """`rung`: the doorbell's number in its queue (doorbells.py); None for a doorbell with a countdown."""
    if rung is not None:
        _started(saga_id, rung)
    # A doorbell given back by a worker that died may be that of a step that kills workers.
    suspect = bool((self.request.delivery_info or {}).get("redelivered"))
    engine.advance(UUID(saga_id), default_runtime(), suspect=suspect)


def _started(saga_id: str, rung: int) -> None:
    doorbells = doorbells_queue()
    try:
        if doorbells is not None:
            doorbells.started(saga_id, rung)
    except Exception as error:  # noqa: BLE001 - a marker left behind costs at most an extra doorbell
        log.warning("cannot record the start of saga %s's doorbell: %s", saga_id, error)


def schedule_with_celery(saga_id: UUID, delay: float) -> None:
    if delay > MAX_COUNTDOWN_SECONDS:
        return
    # robust: whatever happens to the doorbell, the commit stands and its caller is answered.
    transaction.on_commit(lambda: ring(saga_id, delay), robust=True)


def ring(saga_id: UUID, delay: float = 0) -> bool:
    """Enqueue the saga's doorbell now; False if it is left to the sweeper, the broker being
    unreachable. A countdown of 0 sets no ETA: the task runs as soon as a worker takes it."""
    global _broker_paused_until  # one pause per process, as its broker is one
    if time.monotonic() < _broker_paused_until:
        _leave_to_sweeper(saga_id, delay)
        return False
    try:
        _enqueue(saga_id, delay)
    except Exception as error:  # noqa: BLE001 - whatever the broker raised, the sweeper rings later
        _broker_paused_until = time.monotonic() + BROKER_PAUSE_SECONDS
        log.warning("cannot ring saga %s (the sweeper will): %s", saga_id, error)
        _leave_to_sweeper(saga_id, delay)
        return False
    return True


def _enqueue(saga_id: UUID, delay: float) -> None:
    # retry=False: a broker that does not answer is left to the sweeper, not retried here.
    if delay > 0:  # held by a worker until due, not in the queue's order: no marker
        advance_saga.apply_async((str(saga_id),), countdown=delay, retry=False)
        return
    doorbells = doorbells_queue()
    number = doorbells.rung(saga_id) if doorbells is not None else None
    advance_saga.apply_async((str(saga_id),), {"rung": number}, retry=False)


def _leave_to_sweeper(saga_id: UUID, delay: float) -> None:
    """A saga rung for now is due at once, as by a timer (a backoff's wake-up time is already its
    end): the sweeper rings it whatever its doorbell's marker says, for the marker may have reached
    Redis when the doorbell did not."""
    if delay == 0:
        now = timezone.now()
        not_backing_off = Q(retry_at__isnull=True) | Q(retry_at__lte=now)
        SagaInstance.objects.filter(not_backing_off, pk=saga_id).update(wake_at=now, retry_at=now)


def doorbells_queue() -> Doorbells | None:
    """The markers of the queue doorbells go to (see doorbells.py), on Celery's broker."""
    app = advance_saga.app
    return doorbells_of(app, app.amqp.router.route({}, advance_saga.name)["queue"].name)


def default_runtime() -> Runtime:
    return Runtime(
        schedule=schedule_with_celery,
        stall_after=float(saga_settings.SAGA_STALL_AFTER),
        faults=_injected_faults,
    )


def faults_inject(faults: Faults) -> None:
    """Put `faults` into every step this process runs from now on (saga.testing.faults, when
    SAGA_FAULTS asks for them at start)."""
    global _injected_faults  # one set of faults per process, as its settings are one
    _injected_faults = faults
