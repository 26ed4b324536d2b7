"""Orders' price list kept through Kafka, in the services topology: inventory's relay sends the
product events its database committed, orders' consume_events keeps them, and announce_products
fills an empty price list again (a new orders database)."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import call_command

from inventory import services as inventory
from orders.models import ProductPrice
from saga.models import DeadLetter

from .conftest import wait_until

pytestmark = [pytest.mark.topology("services"), pytest.mark.django_db(transaction=True, databases="__all__")]


def listed() -> dict:
    return {row.product_id: (row.sku, row.price, row.version, row.deleted) for row in ProductPrice.objects.all()}


def test_the_price_list_follows_inventory_and_refills_from_scratch(start_command):
    start_command("relay_outbox", "--poll-interval", "0.2", SHOP_CONTEXT="inventory")
    start_command("consume_events")
    widget = inventory.product_create(sku="WIDGET", name="Widget", price=Decimal("25.00"), stock=10)
    gadget = inventory.product_create(sku="GADGET", name="Gadget", price=Decimal("120.00"), stock=3)
    inventory.product_update(product_id=widget.pk, data={"price": Decimal("30.00")})
    inventory.product_delete(product_id=gadget.pk)
    expected = {widget.pk: ("WIDGET", Decimal("30.00"), 2, False), gadget.pk: ("GADGET", Decimal("120.00"), 1, True)}
    wait_until(lambda: listed() == expected, timeout=60, what=f"the price list to be {expected}, not {listed()}")

    ProductPrice.objects.all().delete()  # a new, empty orders database; inventory keeps its products
    call_command("announce_products", stdout=StringIO())
    refilled = {widget.pk: ("WIDGET", Decimal("30.00"), 2, False)}  # a deleted product is not announced
    wait_until(lambda: listed() == refilled, timeout=60, what=f"the price list to be {refilled}, not {listed()}")
    assert not DeadLetter.objects.exists() and not DeadLetter.objects.using("inventory").exists()
