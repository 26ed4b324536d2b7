"""The services topology's processes on real databases and Kafka (docs/topology.md): each
context's process connects to its own database and relays its own outbox."""

from decimal import Decimal

import pytest

from customers import services as customers
from saga.models import OutboxMessage
from tests.conftest import wait_for

from .kafka import read_topics

pytestmark = [pytest.mark.topology("services"), pytest.mark.django_db(transaction=True, databases="__all__")]


def test_a_context_relays_the_events_its_own_database_committed(start_command):
    grace = customers.customer_create(name="Grace", email="grace@example.com", balance=Decimal("10.00"))
    key = str(grace.pk)
    # Only the customers context's relay runs (not orders'): the event is in the customers database.
    start_command("relay_outbox", "--poll-interval", "0.2", SHOP_CONTEXT="customers")
    received = read_topics(["customer_events"], lambda r: any(m.key == key for m in r))
    assert [m.body["type"] for m in received if m.key == key] == ["customer.created"]
    sent = OutboxMessage.objects.using("customers").filter(aggregate_id=key, sent_at__isnull=False)
    wait_for(sent.exists, timeout=30, what="the customers relay to mark its message sent")
    assert not OutboxMessage.objects.using("default").filter(aggregate_id=key).exists()
