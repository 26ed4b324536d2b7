"""The sweeper, run by Celery beat: it rings the doorbells of the sagas that are due (a timer, a
backoff, or no move for the stall time) and whose doorbells are lost. Losing a doorbell, or
getting it twice, changes nothing but timing: the engine decides everything from the database.
The doorbell itself, rung and answered (advance_saga), is in scheduling.py."""

import logging
from datetime import datetime, timedelta
from uuid import UUID

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from saga.core.conf import saga_settings
from saga.core.connections import on_live_task
from saga.orchestration.models import ACTIVE, SagaInstance
from saga.orchestration.scheduling import doorbells_queue, ring

log = logging.getLogger(__name__)


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
