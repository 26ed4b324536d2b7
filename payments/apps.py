from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "payments"

    def ready(self) -> None:
        from saga.services import participant_register

        from .participant import PAYMENTS

        participant_register(PAYMENTS)
