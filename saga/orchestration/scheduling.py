"""The production runtime: Celery rings the doorbell after the transaction commits."""

import logging
from typing import Any
from uuid import UUID

from django.db import transaction

from ..conf import saga_settings
from .faults import ConfiguredFaults
from .runtime import Runtime

log = logging.getLogger(__name__)

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


def doorbells_waiting() -> int | None:
    """How many messages wait in the queue doorbells go to, or None if the broker cannot say."""
    from .tasks import advance_saga

    app = advance_saga.app
    queue = app.amqp.router.route({}, advance_saga.name)["queue"].name
    try:
        with app.connection_for_read() as broker:
            channel: Any = broker.default_channel  # every kombu transport's channel declares queues
            return int(channel.queue_declare(queue=queue, passive=True).message_count)
    except Exception as error:  # noqa: BLE001 - the sweeper then rings as it always did
        log.warning("cannot count the doorbells waiting in %s: %s", queue, error)
        return None


def default_runtime() -> Runtime:
    return Runtime(
        schedule=schedule_with_celery,
        stall_after=float(saga_settings.SAGA_STALL_AFTER),
        faults=ConfiguredFaults.from_json(saga_settings.SAGA_FAULTS),
    )
