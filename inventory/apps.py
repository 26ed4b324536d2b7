from django.apps import AppConfig


class InventoryConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "inventory"

    def ready(self) -> None:
        from saga.messaging import messages_declare
        from saga.services import participant_register

        from .messages import EVENTS
        from .participant import INVENTORY

        messages_declare("inventory", EVENTS)
        participant_register(INVENTORY)
