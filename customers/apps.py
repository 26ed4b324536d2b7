from django.apps import AppConfig


class CustomersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "customers"

    def ready(self) -> None:
        from saga.messaging import messages_declare
        from saga.services import participant_register

        from .messages import EVENTS
        from .participant import CUSTOMERS

        messages_declare("customer", EVENTS)
        participant_register(CUSTOMERS)
