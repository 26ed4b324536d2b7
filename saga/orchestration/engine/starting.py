"""Starting a saga, in its caller's transaction."""

import logging
from datetime import timedelta
from uuid import UUID, uuid4

from saga.core.ids import current_request_id, note_saga

from ..definition import SagaDefinition
from ..models import SagaInstance
from ..runtime import Runtime
from .steps import checked, context
from .transitions import announce

log = logging.getLogger(__package__)  # one logger for the engine, whichever module writes


def start(
    definition: SagaDefinition, *, aggregate_id: UUID, data: dict, runtime: Runtime, request_id: UUID | None = None
) -> SagaInstance:
    """Create the saga in the caller's transaction; it starts moving once that commits. Its
    request id is `request_id`, or that of the HTTP request being served, or else its own id.
    The caller's log lines carry the saga's ids from here on."""
    checked(definition)  # its steps are those its version has always had
    now = runtime.clock.now()
    saga_id = uuid4()
    serving = current_request_id()
    saga = SagaInstance(
        id=saga_id,
        type=definition.name,
        version=definition.version,
        aggregate_id=aggregate_id,
        # The column keeps its historical name; it holds the request id (the API says request_id).
        correlation_id=request_id or (UUID(serving) if serving else saga_id),
        data=data,
        current_step=definition.steps[0].name,
        wake_at=now + timedelta(seconds=runtime.stall_after),
    )
    if definition.deadline is not None:
        saga.deadline = now + timedelta(seconds=definition.deadline(context(saga, definition, now)))
    saga.save(force_insert=True)
    note_saga(saga)
    log.info("saga %s v%s started", saga.type, saga.version)
    announce(saga, "saga.started", version=saga.version)
    runtime.schedule(saga.id, 0)
    return saga
