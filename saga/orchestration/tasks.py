"""Celery tasks are doorbells: "look at saga X now". Losing one, or getting it twice, changes
nothing but timing: the engine decides everything from the database.

No task is spent on a dead database connection: each starts by checking its connection, and one
that dies under it (a terminated backend) is replaced and the work done again, since advancing
or sweeping twice is harmless. If the database stays away, advance_saga rings again later and
the sweeper waits for its next beat."""

import logging
from datetime import timedelta
from uuid import UUID

from celery import Task, shared_task
from django.db import transaction
from django.utils import timezone

from ..conf import saga_settings
from ..connections import CONNECTION_ERRORS, at_task_start, on_live_connection
from . import engine
from .models import ACTIVE, SagaInstance
from .scheduling import default_runtime, doorbells_waiting

log = logging.getLogger(__name__)

# While the database is away, advance_saga rings again after these many seconds (doubling up to the
# last), a few times; after that the sweeper finds the saga when the database is back.
RING_AGAIN_AFTER = (1, 2, 4, 8, 16)


@shared_task(
    bind=True,
    name="saga.tasks.advance_saga",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
    max_retries=len(RING_AGAIN_AFTER),
)
def advance_saga(self: Task, saga_id: str) -> None:
    at_task_start()
    try:
        # A doorbell given back by a worker that died may be that of a step that kills workers.
        suspect = bool((self.request.delivery_info or {}).get("redelivered"))
        on_live_connection(lambda: engine.advance(UUID(saga_id), default_runtime(), suspect=suspect))
    except CONNECTION_ERRORS as error:
        if self.request.retries >= len(RING_AGAIN_AFTER):
            log.warning("database still unavailable; saga %s is left to the sweeper: %s", saga_id, error)
            return
        delay = RING_AGAIN_AFTER[self.request.retries]
        log.warning("database unavailable; ringing again for saga %s in %d s: %s", saga_id, delay, error)
        raise self.retry(countdown=delay) from error


@shared_task(name="saga.tasks.sweep_sagas", ignore_result=True)
def sweep_sagas(limit: int = 500) -> int:
    """Enqueue sagas whose timer, backoff or "should have moved by" time has passed. Any number
    of workers may run it at once: SKIP LOCKED hands each due saga to one of them."""
    at_task_start()
    try:
        return on_live_connection(lambda: _sweep(limit))
    except CONNECTION_ERRORS as error:
        log.warning("database unavailable; the next sweep tries again: %s", error)
        return 0


def _sweep(limit: int) -> int:
    runtime = default_runtime()
    now = timezone.now()
    stall_after = timedelta(seconds=float(saga_settings.SAGA_STALL_AFTER))
    with transaction.atomic():
        due = list(
            SagaInstance.objects.select_for_update(skip_locked=True)
            .filter(status__in=ACTIVE, wake_at__lte=now)
            .order_by("wake_at")
            .values_list("id", "retry_at", "timer_at", "deadline")[:limit]
        )
        timed = [saga_id for saga_id, *times in due if any(t is not None and t <= now for t in times)]
        timed_ids = set(timed)
        stalled = [saga_id for saga_id, *_ in due if saga_id not in timed_ids]
        queued = _queued(stalled)
        # Not again before the stall time, whether or not this enqueue is lost.
        SagaInstance.objects.filter(id__in=[saga_id for saga_id, *_ in due]).update(wake_at=now + stall_after)
        ringing = timed if queued else timed + stalled
        for saga_id in ringing:
            runtime.schedule(saga_id, 0)
    # Every few seconds: a line only when it did something.
    if ringing:
        log.info("sweeper enqueued %d due sagas", len(ringing))
    else:
        log.debug("sweeper found no saga to ring (%d due)", len(due))
    return len(ringing)


def _queued(stalled: list[UUID]) -> bool:
    """Are the sagas that should have moved by now waiting their turn in a long queue, rather
    than stuck (their doorbell lost, or their worker gone)? After a burst, sagas wait in the
    queue past the stall time, and ringing again would only double the queue. If at least as
    many doorbells wait as sagas look stalled, they wait: they are looked at again after the
    stall time, and rung once the queue is shorter than their number."""
    if not stalled:
        return False
    waiting = doorbells_waiting()
    if waiting is not None and waiting >= len(stalled):
        log.info("%d sagas wait past the stall time behind %d doorbells; not ringing again", len(stalled), waiting)
        return True
    return False
