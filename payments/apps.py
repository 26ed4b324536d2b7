from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "payments"

    def ready(self) -> None:
        from saga.messaging import messages_declare
        from saga.services import participant_register

        from .messages import EVENTS
        from .participant import PAYMENTS

        messages_declare("payment", EVENTS)
        participant_register(PAYMENTS)
