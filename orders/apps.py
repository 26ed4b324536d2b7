from django.apps import AppConfig


class OrdersConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "orders"

    def ready(self) -> None:
        from saga.messaging import message_handler_register, messages_declare
        from saga.services import saga_register

        from .handlers import on_fulfillment_accepted
        from .messages import EVENTS, FulfillmentAccepted
        from .price_list import price_list_keep
        from .saga import PLACE_ORDER
        from .saga_v1 import PLACE_ORDER_V1
        from .selectors import price_list_in_use

        messages_declare("order", EVENTS)
        saga_register(PLACE_ORDER_V1)  # kept while sagas started under it may still run
        saga_register(PLACE_ORDER)
        message_handler_register(context="fulfillment", message=FulfillmentAccepted, handler=on_fulfillment_accepted)
        if price_list_in_use():
            price_list_keep()
