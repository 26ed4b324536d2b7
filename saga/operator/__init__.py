"""What operators and HTTP clients see of the engine: the Django admin (sagas, dead letters, the
outbox, the inbox, the audit trail) with its dashboard and the pieces a project's own admin uses
(display, links), the saga diagram, the REST resource and its helpers, and the metrics.
It stands on the engine's facade (saga.services, saga.selectors, saga.models)."""
