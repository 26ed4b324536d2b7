from django.apps import AppConfig


class OrdersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "orders"

    def ready(self) -> None:
        from saga.services import saga_register

        from .saga import PLACE_ORDER

        saga_register(PLACE_ORDER)
