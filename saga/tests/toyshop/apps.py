"""A tiny app of the engine's tests, written as a project using the engine would write one: it
declares its messages, registers its participant, its saga and a message handler at start-up."""

from django.apps import AppConfig


class ToyshopConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "saga.tests.toyshop"
    label = "toyshop"

    def ready(self) -> None:
        from saga.messaging import message_handler_register, messages_declare
        from saga.services import participant_register, saga_register

        from .participant import EVENTS, TOYBOX
        from .saga import TOY_ORDER, CourierBooked, on_courier_booked

        messages_declare("toy", EVENTS)  # on the topic toy_events
        participant_register(TOYBOX)
        saga_register(TOY_ORDER)
        # consume_events reads courier_events for it
        message_handler_register(context="courier", message=CourierBooked, handler=on_courier_booked)
