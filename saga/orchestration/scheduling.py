"""The production runtime: Celery rings the doorbell after the transaction commits.

PostgreSQL is the ledger: a doorbell that cannot be rung at once (Redis frozen, failing over,
away) does not hold the transaction's caller. Its saga is made due for the sweeper, which rings it
once Redis answers again; for a few seconds after such a failure, a process does not even try."""

import logging
import time
from uuid import UUID

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from saga.core.conf import saga_settings

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
    from .tasks import advance_saga  # the task module imports this one

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
    from .tasks import advance_saga

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
