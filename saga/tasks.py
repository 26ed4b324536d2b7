"""The engine's Celery tasks, where Celery's autodiscovery looks for them (`saga.tasks`)."""

from .messaging.tasks import purge_outbox
from .orchestration.scheduling import advance_saga
from .orchestration.sweeper import sweep_sagas

__all__ = ["advance_saga", "purge_outbox", "sweep_sagas"]
