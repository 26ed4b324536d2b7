"""Celery tasks are doorbells: "look at saga X now". Losing one, or getting it twice, changes
nothing but timing: the engine decides everything from the database.

No task is spent on a dead database connection (see on_live_task): advancing or sweeping twice is
harmless. If the database stays away, advance_saga rings again later and the sweeper waits for its
next beat."""

import logging
from datetime import datetime, timedelta
from uuid import UUID

from celery import Task, shared_task
from django.db import transaction
from django.utils import timezone

from saga.core.conf import saga_settings
from saga.core.connections import on_live_task

from . import engine
from .models import ACTIVE, SagaInstance
from .scheduling import default_runtime, doorbells_queue, ring

log = logging.getLogger(__name__)

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


def _next_sweep(error: BaseException, limit: int = 500) -> int:
    log.warning("database unavailable; the next sweep tries again: %s", error)
    return 0


@shared_task(name="saga.tasks.sweep_sagas", ignore_result=True)
@on_live_task(_next_sweep)
def sweep_sagas(limit: int = 500) -> int:
    """Enqueue sagas whose timer, backoff or "should have moved by" time has passed. Any number
    of workers may run it at once: SKIP LOCKED hands each due saga to one of them. The due sagas
    are taken and committed (so that no row stays locked while the broker is asked), then those
    whose timer is due and those whose doorbell is lost are rung. A saga whose doorbell still
    waits its turn in the queue is not rung again: it is looked at again after a sweep interval.
    One rung is not looked at again before the stall time (it may be running a long step)."""
    now = timezone.now()
    look_again = now + timedelta(seconds=float(saga_settings.SAGA_SWEEP_INTERVAL))
    timed, stalled = take_due(now, limit, look_again)
    lost = _lost(stalled)
    if len(lost) < len(stalled):
        log.info("%d sagas wait past the stall time for their doorbells in the queue", len(stalled) - len(lost))
    ringing = timed + lost
    not_before = now + timedelta(seconds=float(saga_settings.SAGA_STALL_AFTER))
    # Only those not moved (nor left to the sweeper by a failed ring) since they were taken.
    SagaInstance.objects.filter(id__in=ringing, wake_at=look_again).update(wake_at=not_before)
    rung = sum(ring(saga_id) for saga_id in ringing)
    # Every few seconds: a line only when it did something.
    if rung:
        log.info("sweeper rang %d due sagas", rung)
    else:
        log.debug("sweeper found no saga to ring (%d due)", len(timed) + len(stalled))
    return rung


def take_due(now: datetime, limit: int, look_again: datetime) -> tuple[list[UUID], list[UUID]]:
    """The due sagas, in one short transaction that makes them due again at `look_again`: those
    whose timer or backoff is due, and those that have only not moved for the stall time."""
    with transaction.atomic():
        due = list(
            SagaInstance.objects.select_for_update(skip_locked=True)
            .filter(status__in=ACTIVE, wake_at__lte=now)
            .order_by("wake_at")
            .values_list("id", "retry_at", "timer_at", "deadline")[:limit]
        )
        SagaInstance.objects.filter(id__in=[saga_id for saga_id, *_ in due]).update(wake_at=look_again)
    timed = [saga_id for saga_id, *times in due if any(t is not None and t <= now for t in times)]
    timed_ids = set(timed)
    return timed, [saga_id for saga_id, *_ in due if saga_id not in timed_ids]


def _lost(stalled: list[UUID]) -> list[UUID]:
    """The stalled sagas whose doorbells no longer wait in the queue: all of them if the broker
    cannot say (ringing one that waits costs only an extra doorbell)."""
    doorbells = doorbells_queue()
    if doorbells is None or not stalled:
        return stalled
    try:
        return doorbells.lost(stalled)
    except Exception as error:  # noqa: BLE001 - whatever the broker raised
        log.warning("cannot tell which doorbells wait in %s: %s", doorbells.queue, error)
        return stalled
