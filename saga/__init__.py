"""A saga engine for Django: sagas orchestrated durably on PostgreSQL, a transactional outbox
relayed to Kafka, an inbox, and the operators' admin and API. It imports nothing of the project
that installs it. Inside, it stands in floors (see .importlinter): core, messaging, orchestration,
the facade (services, selectors, models, tasks), operator, and on top its wiring and testing.

A project imports only the modules named in PUBLIC_SURFACE (the architecture test holds it to
them); its tests may also use saga.testing (the harness, given/expect scenarios, faults)."""

PUBLIC_SURFACE = (
    "saga.orchestration",  # the definition DSL: SagaDefinition, Step, Wait, Refusal, StepContext
    "saga.orchestration.records",  # a participant's record of each aggregate: idempotent commands
    "saga.services",  # commands: start, signal, cancel, the operator's actions; the participant API
    "saga.selectors",  # queries
    "saga.messaging",  # publish, published_together, messages_declare, message_handler_register
    "saga.operator.rest",  # REST helpers: the error shape, patterns, conflicts answered as 409
    "saga.operator.permissions",  # `requires`: a view's model permissions
    "saga.operator.apis",  # the saga resource, for a project to nest under its aggregates
    "saga.operator.display",  # admin building blocks: badges, times, the read-only ledger admin
    "saga.operator.links",  # links from an aggregate's admin page to its sagas
    "saga.operator.metrics",  # the Prometheus view
    "saga.core.connections",  # surviving a dropped database connection in a view
    "saga.core.ids",  # the ids every log line carries, for the project's log format
    "saga.core.counters",  # process_exited: the project's process manager tells of a dead worker
)
