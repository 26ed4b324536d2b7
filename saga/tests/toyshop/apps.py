from django.apps import AppConfig


class ToyshopConfig(AppConfig):
    name = "saga.tests.toyshop"
    label = "toyshop"

    def ready(self) -> None:
        pass
