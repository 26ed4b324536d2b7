"""What operators and HTTP clients see of the engine: the Django admin (sagas, dead letters, the
outbox, the dashboard), the saga diagram, the REST resource and its helpers, and the metrics.
It stands on the engine's facade (saga.services, saga.selectors, saga.models)."""
