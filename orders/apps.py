from django.apps import AppConfig


class OrdersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "orders"

    def ready(self) -> None:
        from saga.messaging import message_handler_register, messages_declare
        from saga.services import saga_register

        from . import services
        from .messages import EVENTS, on_fulfillment_accepted
        from .price_list import price_list_keep
        from .saga import PLACE_ORDER
        from .selectors import price_list_in_use

        messages_declare("order", EVENTS)
        saga_register(PLACE_ORDER)
        message_handler_register(
            context="fulfillment", type=services.ACCEPTED, handler=on_fulfillment_accepted, payload="order_id"
        )
        if price_list_in_use():
            price_list_keep()
