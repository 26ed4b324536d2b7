"""The migration that makes emails unique refuses to guess which of two customers owns one."""

from decimal import Decimal

import pytest
from django.core.management.base import CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = ("customers", "0001_initial")
UNIQUE = ("customers", "0002_customer_email_unique")


def migrate(*targets: tuple[str, str]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.migrate(list(targets) or executor.loader.graph.leaf_nodes())
    return executor


@pytest.mark.django_db(transaction=True)
def test_duplicate_emails_stop_the_migration_with_their_customers_named():
    customer = migrate(BEFORE).loader.project_state(BEFORE).apps.get_model("customers", "Customer")
    try:
        first = customer.objects.create(name="Grace", email="grace@example.com", balance=Decimal("500.00"))
        second = customer.objects.create(name="Grace", email="Grace@Example.com", balance=Decimal("500.00"))
        for name in ("No mail", "No mail either"):  # customers without an email stay allowed
            customer.objects.create(name=name, email="", balance=Decimal("1.00"))
        with pytest.raises(CommandError) as refused:
            migrate(UNIQUE)
        message = str(refused.value)
        assert "grace@example.com" in message.lower() and str(first.pk) in message and str(second.pk) in message
        assert sorted(customer.objects.values_list("email", flat=True)) == [
            "",
            "",
            "Grace@Example.com",
            "grace@example.com",
        ]
        customer.objects.filter(pk=second.pk).update(email="grace.two@example.com")
        migrate(UNIQUE)  # once each email is someone's alone, it goes through
    finally:
        customer.objects.update(email="")
        migrate()
