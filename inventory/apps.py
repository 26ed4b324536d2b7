from django.apps import AppConfig


class InventoryConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "inventory"

    def ready(self) -> None:
        from saga.messaging import messages_declare

        from .messages import EVENTS

        messages_declare("inventory", EVENTS)
