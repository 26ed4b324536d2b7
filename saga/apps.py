from django.apps import AppConfig


class SagaConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "saga"
    verbose_name = "Sagas and messaging"

    def ready(self) -> None:
        from saga.core import celery_signals
        from saga.core.conf import saga_settings
        from saga.core.logs import install_record_factory
        from saga.orchestration.scheduling import faults_inject

        from . import checks  # noqa: F401 - registers the system checks
        from .messaging import messages_declare

        install_record_factory()  # log records carry the ids of the saga, request and step at hand
        celery_signals.connect()
        if saga_settings.SAGA_FAULTS:  # a chaos run or a crash test: faults in this process's steps
            from saga.testing.faults import ConfiguredFaults

            faults_inject(ConfiguredFaults.from_json(saga_settings.SAGA_FAULTS))

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
