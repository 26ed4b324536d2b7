from django.apps import AppConfig


class OrdersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "orders"

    def ready(self) -> None:
        from saga.services import message_handler_register, saga_register

        from .messages import on_fulfillment_accepted
        from .saga import PLACE_ORDER

        saga_register(PLACE_ORDER)
        message_handler_register("fulfillment.accepted", on_fulfillment_accepted)
