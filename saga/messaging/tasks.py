"""Housekeeping of the outbox, run by Celery beat."""

import logging
from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from saga.core.conf import saga_settings
from saga.core.connections import on_live_task

from .models import OutboxMessage

log = logging.getLogger(__name__)


def _next_purge(error: BaseException, chunk: int = 10_000) -> int:
    log.warning("database unavailable; the next purge tries again: %s", error)
    return 0


@shared_task(name="saga.tasks.purge_outbox", ignore_result=True)
@on_live_task(_next_purge)
def purge_outbox(chunk: int = 10_000) -> int:
    """Delete sent outbox rows older than OUTBOX_RETENTION, a chunk at a time. A connection that
    dies under it is replaced (deleting again what is gone is harmless); if the database stays
    away, the next run (hourly) purges."""
    cutoff = timezone.now() - timedelta(seconds=float(saga_settings.OUTBOX_RETENTION))
    purged = 0
    while True:
        old = list(OutboxMessage.objects.filter(sent_at__lt=cutoff).values_list("position", flat=True)[:chunk])
        if not old:
            return purged
        purged += OutboxMessage.objects.filter(position__in=old).delete()[0]
