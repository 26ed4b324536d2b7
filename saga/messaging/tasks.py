"""Housekeeping of the outbox, run by Celery beat."""

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from ..conf import saga_settings
from .models import OutboxMessage


@shared_task(name="saga.tasks.purge_outbox", ignore_result=True)
def purge_outbox(chunk: int = 10_000) -> int:
    """Delete sent outbox rows older than OUTBOX_RETENTION, a chunk at a time."""
    cutoff = timezone.now() - timedelta(seconds=float(saga_settings.OUTBOX_RETENTION))
    purged = 0
    while True:
        old = list(OutboxMessage.objects.filter(sent_at__lt=cutoff).values_list("position", flat=True)[:chunk])
        if not old:
            return purged
        purged += OutboxMessage.objects.filter(position__in=old).delete()[0]
