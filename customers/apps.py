from django.apps import AppConfig


class CustomersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "customers"

    def ready(self) -> None:
        from saga.messaging import messages_declare

        from .messages import EVENTS

        messages_declare("customer", EVENTS)
