"""Orders' price list, kept from inventory's product events (SHOP_TOPOLOGY=services), through the
real inbox on real PostgreSQL: the events are the ones inventory's services wrote to the outbox,
as the relay would send them."""

import json
from decimal import Decimal
from io import StringIO
from uuid import uuid4

import pytest
from django.core.management import CommandError, call_command

from inventory import services as inventory
from orders import selectors
from orders.models import Order, ProductPrice
from saga.messaging.inbox import consume
from saga.models import DeadLetter, OutboxMessage

from ..api.test_orders_api import place
from ..price_list import TOPIC, deliver, price_list_handlers, price_list_told


@pytest.fixture
def services_topology(settings):
    settings.SHOP_TOPOLOGY = "services"


def events_of(product_id) -> list[OutboxMessage]:
    return list(OutboxMessage.objects.filter(aggregate_id=str(product_id), type__startswith="product."))


def kept(product_id) -> tuple[str, Decimal, int, bool]:
    row = ProductPrice.objects.get(pk=product_id)
    return row.sku, row.price, row.version, row.deleted


def test_created_then_updated_is_kept_with_the_newest_version(db):
    product = inventory.product_create(sku="WIDGET", name="Widget", price=Decimal("25.00"), stock=10)
    inventory.product_update(product_id=product.pk, data={"price": Decimal("30.00")})
    created, updated = events_of(product.pk)
    assert deliver(created) == ["processed"]
    assert kept(product.pk) == ("WIDGET", Decimal("25.00"), 1, False)
    assert deliver(updated) == ["processed"]
    assert kept(product.pk) == ("WIDGET", Decimal("30.00"), 2, False)
    assert ProductPrice.objects.get(pk=product.pk).event_id == updated.id


def test_a_duplicate_is_skipped_by_the_inbox(db):
    product = inventory.product_create(sku="WIDGET", name="Widget", price=Decimal("25.00"), stock=10)
    (created,) = events_of(product.pk)
    assert deliver(created, created) == ["processed", "duplicate"]
    assert kept(product.pk) == ("WIDGET", Decimal("25.00"), 1, False)


def test_a_late_update_does_not_overwrite_a_newer_one(db):
    product = inventory.product_create(sku="WIDGET", name="Widget", price=Decimal("25.00"), stock=10)
    inventory.product_update(product_id=product.pk, data={"price": Decimal("30.00")})
    inventory.product_update(product_id=product.pk, data={"price": Decimal("35.00"), "sku": "WIDGET-2"})
    created, older, newer = events_of(product.pk)
    assert deliver(newer, created, older) == ["processed"] * 3  # each acted on once
    assert kept(product.pk) == ("WIDGET-2", Decimal("35.00"), 3, False)


def test_a_deletion_wins_over_an_update_before_or_after_it(db, services_topology):
    product = inventory.product_create(sku="WIDGET", name="Widget", price=Decimal("25.00"), stock=10)
    inventory.product_update(product_id=product.pk, data={"price": Decimal("30.00")})
    inventory.product_delete(product_id=product.pk)
    created, updated, deleted = events_of(product.pk)
    deliver(created, deleted, updated)
    assert kept(product.pk) == ("WIDGET", Decimal("25.00"), 1, True)  # the update came late: no change
    assert selectors.priced_products_by_ids(ids={product.pk}) == {}
    assert selectors.priced_products_by_skus(skus={"WIDGET"}) == {}


def test_a_deletion_told_before_the_creation_keeps_the_product_out(db):
    product = inventory.product_create(sku="WIDGET", name="Widget", price=Decimal("25.00"), stock=10)
    inventory.product_delete(product_id=product.pk)
    created, deleted = events_of(product.pk)
    deliver(deleted, created)
    assert kept(product.pk) == ("", Decimal("0.00"), 0, True)


def test_a_recreated_sku_is_a_new_product(db, services_topology):
    first = inventory.product_create(sku="WIDGET", name="Widget", price=Decimal("25.00"), stock=10)
    inventory.product_delete(product_id=first.pk)
    second = inventory.product_create(sku="WIDGET", name="Widget II", price=Decimal("40.00"), stock=5)
    deliver(*events_of(first.pk), *events_of(second.pk))
    priced = selectors.priced_products_by_skus(skus={"WIDGET"})
    assert priced == {"WIDGET": selectors.PricedProduct(id=second.pk, sku="WIDGET", price=Decimal("40.00"))}


def test_a_sku_two_products_traded_names_none_until_the_later_event(db, services_topology):
    # A gives up its sku and B takes it; their events have different keys, so B's may come first.
    a = inventory.product_create(sku="WIDGET", name="Widget", price=Decimal("25.00"), stock=10)
    inventory.product_update(product_id=a.pk, data={"sku": "OLD-WIDGET"})
    b = inventory.product_create(sku="WIDGET", name="New widget", price=Decimal("40.00"), stock=5)
    a_created, a_renamed = events_of(a.pk)
    deliver(a_created, *events_of(b.pk))
    assert selectors.priced_products_by_skus(skus={"WIDGET"}) == {}  # both claim it: neither is priced
    deliver(a_renamed)
    assert selectors.priced_products_by_skus(skus={"WIDGET", "OLD-WIDGET"}) == {
        "WIDGET": selectors.PricedProduct(id=b.pk, sku="WIDGET", price=Decimal("40.00")),
        "OLD-WIDGET": selectors.PricedProduct(id=a.pk, sku="OLD-WIDGET", price=Decimal("25.00")),
    }


@pytest.mark.parametrize(
    ("payload", "why"),
    [
        ({"sku": "WIDGET", "price": "25.00"}, "missing required field `version`"),  # sent before versions
        ({"sku": "WIDGET", "price": "25.00", "version": 0}, "not a positive integer"),
        ({"sku": "WIDGET", "price": "-1.00", "version": 1}, "is not a price"),
        ({"sku": "WIDGET", "price": "cheap", "version": 1}, "Invalid decimal"),
        ({"sku": "", "price": "25.00", "version": 1}, "sku is empty"),
    ],
)
def test_an_unusable_product_event_is_parked_and_changes_nothing(db, payload, why):
    product_id = uuid4()
    product = {"id": str(product_id), "name": "Widget", "stock": 10}
    body = {"id": str(uuid4()), "type": "product.updated", "payload": {**product, **payload}}
    assert consume(TOPIC, json.dumps(body).encode(), using=price_list_handlers(), lenient=True) == "parked"
    assert why in DeadLetter.objects.get().error
    assert not ProductPrice.objects.exists()


def test_the_monolith_prices_from_inventory_directly(db, settings):
    settings.SHOP_TOPOLOGY = "monolith"
    product = inventory.product_create(sku="WIDGET", name="Widget", price=Decimal("25.00"), stock=10)
    inventory.product_update(product_id=product.pk, data={"price": Decimal("30.00")})
    expected = selectors.PricedProduct(id=product.pk, sku="WIDGET", price=Decimal("30.00"))
    assert selectors.priced_products_by_ids(ids={product.pk}) == {product.pk: expected}
    assert selectors.priced_products_by_skus(skus={"WIDGET"}) == {"WIDGET": expected}
    assert not ProductPrice.objects.exists()


def test_services_price_from_the_price_list_only(db, services_topology):
    product = inventory.product_create(sku="WIDGET", name="Widget", price=Decimal("25.00"), stock=10)
    created = events_of(product.pk)[0]
    inventory.product_update(product_id=product.pk, data={"price": Decimal("30.00")})  # not consumed yet
    assert selectors.priced_products_by_ids(ids={product.pk}) == {}  # not told yet: not orderable
    deliver(created)
    expected = selectors.PricedProduct(id=product.pk, sku="WIDGET", price=Decimal("25.00"))  # as told so far
    assert selectors.priced_products_by_ids(ids={product.pk}) == {product.pk: expected}
    assert selectors.priced_products_by_skus(skus={"WIDGET"}) == {"WIDGET": expected}


def test_placing_an_order_for_a_product_not_yet_told_is_409(api, customer, services_topology):
    product = inventory.product_create(sku="WIDGET", name="Widget", price=Decimal("25.00"), stock=10)
    for items in ([{"sku": "WIDGET", "quantity": 1}], [{"product_id": str(product.pk), "quantity": 1}]):
        response = place(api, {"customer_id": str(customer.pk), "items": items})
        assert response.status_code == 409 and response.json()["code"] == "unknown_product", response.content
    assert Order.objects.count() == 0
    price_list_told()
    response = place(api, {"customer_id": str(customer.pk), "items": [{"sku": "WIDGET", "quantity": 2}]})
    assert response.status_code == 202, response.content
    assert response.json()["total"] == "50.00"


def test_announce_products_fills_an_empty_price_list_and_is_safe_twice(db, services_topology):
    widget = inventory.product_create(sku="WIDGET", name="Widget", price=Decimal("25.00"), stock=10)
    gadget = inventory.product_create(sku="GADGET", name="Gadget", price=Decimal("120.00"), stock=3)
    inventory.product_update(product_id=gadget.pk, data={"price": Decimal("99.00")})
    OutboxMessage.objects.all().delete()  # the first events are gone (retention), the products are not
    output = StringIO()
    call_command("announce_products", "--batch", "1", stdout=output)
    assert "announced 2 products" in output.getvalue()
    call_command("announce_products", stdout=StringIO())
    first, again = events_of(gadget.pk)
    assert [(m.type, m.payload["version"]) for m in (first, again)] == [("product.updated", 2)] * 2
    assert deliver(*OutboxMessage.objects.all()) == ["processed"] * 4
    assert kept(widget.pk) == ("WIDGET", Decimal("25.00"), 1, False)
    assert kept(gadget.pk) == ("GADGET", Decimal("99.00"), 2, False)
    assert ProductPrice.objects.get(pk=gadget.pk).event_id == first.id  # the second telling changed nothing


def test_announce_products_refuses_a_batch_below_one(db):
    with pytest.raises(CommandError, match="--batch must be at least 1"):
        call_command("announce_products", "--batch", "0")
