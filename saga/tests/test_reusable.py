"""The engine installs into a project that has nothing of the shop."""
from django.apps import apps

from saga.models import OutboxMessage, SagaInstance


def test_the_engine_installs_without_the_shop(db) -> None:
    installed = {config.name for config in apps.get_app_configs()}
    assert "saga" in installed
    assert not installed & {"shop", "orders", "customers", "inventory", "payments"}
    assert (SagaInstance.objects.count(), OutboxMessage.objects.count()) == (0, 0)  # its migrations applied
