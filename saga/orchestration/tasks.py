"""Celery tasks are doorbells: "look at saga X now". Losing one, or getting it twice, changes
nothing but timing: the engine decides everything from the database."""

import logging
from datetime import timedelta
from uuid import UUID

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from ..conf import saga_settings
from . import engine
from .models import ACTIVE, SagaInstance
from .scheduling import default_runtime

log = logging.getLogger(__name__)


@shared_task(name="saga.tasks.advance_saga", acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def advance_saga(saga_id: str) -> None:
    engine.advance(UUID(saga_id), default_runtime())


@shared_task(name="saga.tasks.sweep_sagas", ignore_result=True)
def sweep_sagas(limit: int = 500) -> int:
    """Enqueue sagas whose timer, backoff or "should have moved by" time has passed. Any number
    of workers may run it at once: SKIP LOCKED hands each due saga to one of them."""
    runtime = default_runtime()
    now = timezone.now()
    with transaction.atomic():
        due = list(
            SagaInstance.objects.select_for_update(skip_locked=True)
            .filter(status__in=ACTIVE, wake_at__lte=now)
            .order_by("wake_at")
            .values_list("id", flat=True)[:limit]
        )
        # Not again before the stall time, whether or not this enqueue is lost.
        stall_after = timedelta(seconds=float(saga_settings.SAGA_STALL_AFTER))
        SagaInstance.objects.filter(id__in=due).update(wake_at=now + stall_after)
        for saga_id in due:
            runtime.schedule(saga_id, 0)
    if due:
        log.info("sweeper enqueued %d due sagas", len(due))
    return len(due)
