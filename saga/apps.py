from django.apps import AppConfig


class SagaConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "saga"
    verbose_name = "Sagas and messaging"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the system checks
        from .messaging import messages_declare
        from .observability import celery_signals
        from .observability.logs import install_record_factory

        install_record_factory()  # log records carry the ids of the saga, request and step at hand
        celery_signals.connect()

        # The engine's own events, on saga_events; every payload has saga_id, saga_type, aggregate_id.
        messages_declare(
            "saga",
            {
                "saga.started": "saga_type, version",
                "saga.compensating": "saga_type, step, reason",
                "saga.completed": "saga_type",
                "saga.compensated": "saga_type, reason",
                "saga.failed": "saga_type, step, error",
            },
        )
