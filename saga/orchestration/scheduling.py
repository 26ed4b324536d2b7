"""The production runtime: Celery rings the doorbell after the transaction commits."""

from uuid import UUID

from django.db import transaction

from ..conf import saga_settings
from .faults import ConfiguredFaults
from .runtime import Runtime

# Longer timers are left to the sweeper: a long Celery countdown sits in the worker's memory and
# outlives the Redis visibility timeout.
MAX_COUNTDOWN_SECONDS = 60


def schedule_with_celery(saga_id: UUID, delay: float) -> None:
    from .tasks import advance_saga  # the task module imports this one

    if delay > MAX_COUNTDOWN_SECONDS:
        return
    # robust: if Redis is down the commit still stands, and the sweeper enqueues the saga later.
    # A countdown of 0 sets no ETA: the task runs as soon as a worker takes it.
    transaction.on_commit(lambda: advance_saga.apply_async((str(saga_id),), countdown=delay), robust=True)


def default_runtime() -> Runtime:
    return Runtime(
        schedule=schedule_with_celery,
        stall_after=float(saga_settings.SAGA_STALL_AFTER),
        faults=ConfiguredFaults.from_json(saga_settings.SAGA_FAULTS),
    )
