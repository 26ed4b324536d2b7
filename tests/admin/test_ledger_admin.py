"""The ledger cannot be edited by hand in the admin; customers and products are edited through
their services, with the API's validation and events."""

import json
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model

from common.admin import COLORS
from customers import selectors as customer_selectors
from customers import services as customer_services
from customers.models import FundsHold
from inventory import selectors as inventory_selectors
from inventory.models import StockReservation
from orders.models import Order
from payments.models import Payment
from saga.messaging.inbox import consume
from saga.models import OutboxMessage, ProcessedCommand
from tests.conftest import while_uncommitted

from .conftest import client_for

LEDGER = [
    "orders/order",
    "saga/sagainstance",
    "customers/fundshold",
    "inventory/stockreservation",
    "payments/payment",
    "saga/outboxmessage",
    "saga/inboxmessage",
    "saga/processedcommand",
    "saga/deadletter",
    "saga/operatoraction",
]


@pytest.fixture
def root(db):
    return client_for(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))


def first_pk(model: str):
    from django.apps import apps

    app_label, name = model.split("/")
    return apps.get_model(app_label, name)._default_manager.values_list("pk", flat=True).first()


@pytest.mark.parametrize("model", LEDGER)
def test_the_ledger_offers_no_add_no_save_no_delete(root, sagas, dead_letter, model):
    from saga import services

    services.saga_resolve(saga_id=sagas["failed"].pk, comment="fixed by hand")  # an audit row to look at
    accepted = {"id": str(uuid.uuid4()), "type": "fulfillment.accepted", "payload": {"order_id": "x"}}
    accepted["payload"]["order_id"] = str(sagas["waiting"].aggregate_id)
    assert consume("fulfillment_events", json.dumps(accepted).encode()) == "processed"  # an inbox row
    ProcessedCommand.objects.create(command_id=uuid.uuid4(), participant="payments", command="payment.void", result={})
    listing = root.get(f"/admin/{model}/")
    assert listing.status_code == 200
    assert f"/admin/{model}/add/".encode() not in listing.content
    assert b'value="delete_selected"' not in listing.content
    assert root.get(f"/admin/{model}/add/").status_code == 403
    pk = first_pk(model)
    assert pk is not None, f"no {model} to look at"
    page = root.get(f"/admin/{model}/{pk}/change/")
    assert page.status_code == 200
    assert b'name="_save"' not in page.content and b"deletelink" not in page.content
    assert root.get(f"/admin/{model}/{pk}/delete/").status_code == 403


def test_posting_to_a_confirmed_order_changes_nothing(root, sagas):
    order = Order.objects.get(pk=sagas["completed"].aggregate_id)
    assert order.status == Order.Status.CONFIRMED
    response = root.post(f"/admin/orders/order/{order.pk}/change/", {"status": "CANCELLED", "_save": "Save"})
    assert response.status_code == 403
    assert Order.objects.get(pk=order.pk).updated_at == order.updated_at
    assert root.post(f"/admin/orders/order/{order.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Order.objects.filter(pk=order.pk).exists()


def test_the_order_page_shows_lines_total_and_links_to_saga_and_customer(root, sagas, shop):
    customer, _ = shop
    order = Order.objects.get(pk=sagas["completed"].aggregate_id)
    page = root.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    assert "WIDGET \u00d7 2" in page and "50.00" in page and "CONFIRMED" in page
    assert f"/admin/saga/sagainstance/{order.saga_id}/change/" in page
    assert f"/admin/customers/customer/{customer.pk}/change/" in page and "Ada Lovelace" in page
    assert "OrderLine object" not in page
    listing = root.get("/admin/orders/order/").content.decode()
    assert "WIDGET \u00d7 2" in listing and "credit only" in listing


def test_times_show_to_the_millisecond(root, sagas):
    order = Order.objects.get(pk=sagas["completed"].aggregate_id)
    page = root.get(f"/admin/orders/order/{order.pk}/change/").content.decode()
    assert order.created_at.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] in page


@pytest.mark.parametrize("statuses", [Order.Status, FundsHold.Status, StockReservation.Status, Payment.Status])
def test_every_status_of_a_context_has_its_color(statuses):
    """A status the contexts' palette (common/admin.py) forgot would show grey, as if undone."""
    assert set(statuses.values) <= set(COLORS)


def test_a_customer_added_and_changed_in_the_admin_goes_through_the_service(root):
    response = root.post(
        "/admin/customers/customer/add/",
        {"name": "Grace", "email": "grace@example.com", "balance": "120.00", "blocked": ""},
    )
    assert response.status_code == 302, response.content[-2000:]
    grace = customer_selectors.customer_list().get(name="Grace")
    assert OutboxMessage.objects.filter(type="customer.created", aggregate_id=str(grace.pk)).count() == 1
    response = root.post(
        f"/admin/customers/customer/{grace.pk}/change/",
        {"name": "Grace Hopper", "email": "grace@example.com", "balance": "80.00", "blocked": "on"},
    )
    assert response.status_code == 302
    grace = customer_selectors.customer_get(customer_id=grace.pk)
    assert (grace.name, grace.balance, grace.blocked) == ("Grace Hopper", Decimal("80.00"), True)
    updated = OutboxMessage.objects.get(type="customer.updated", aggregate_id=str(grace.pk))
    assert updated.payload["balance"] == "80.00" and updated.payload["blocked"] is True


def test_adding_a_customer_with_a_taken_email_is_a_form_error(root, shop):
    customer, _ = shop
    before = OutboxMessage.objects.count()
    response = root.post(
        "/admin/customers/customer/add/",
        {"name": "Ada again", "email": customer.email.upper(), "balance": "1.00", "blocked": ""},
    )
    assert response.status_code == 200 and b"A customer with this email already exists." in response.content
    assert customer_selectors.customer_list().filter(email__iexact=customer.email).count() == 1
    assert OutboxMessage.objects.count() == before


@pytest.mark.django_db(transaction=True)
def test_a_customer_added_as_another_takes_its_email_is_a_form_error(root):
    # The form and the service check before the other customer commits; the database refuses.
    response = while_uncommitted(
        lambda: customer_services.customer_create(name="Grace", email="grace@example.com", balance=Decimal("1.00")),
        lambda: root.post(
            "/admin/customers/customer/add/",
            {"name": "Grace 2", "email": "Grace@Example.com", "balance": "1.00", "blocked": ""},
        ),
    )
    assert response.status_code == 200 and b"A customer with this email already exists." in response.content
    assert customer_selectors.customer_list().filter(email__iexact="grace@example.com").count() == 1


def test_a_customer_cannot_be_left_with_less_than_is_held(root, sagas, shop):
    customer, _ = shop
    held = customer_selectors.customer_get(customer_id=customer.pk).reserved
    assert held > 0  # the waiting delivery order holds funds
    before = OutboxMessage.objects.count()
    response = root.post(
        f"/admin/customers/customer/{customer.pk}/change/",
        {"name": "Ada", "email": "ada@example.com", "balance": "1.00", "blocked": ""},
    )
    assert response.status_code == 200 and b"balance must cover the funds held" in response.content
    assert customer_selectors.customer_get(customer_id=customer.pk).balance == customer.balance - Decimal("50.00")
    assert OutboxMessage.objects.count() == before
    negative = root.post(
        f"/admin/customers/customer/{customer.pk}/change/", {"name": "Ada", "balance": "-5.00", "blocked": ""}
    )
    assert negative.status_code == 200 and OutboxMessage.objects.count() == before


def test_a_product_added_and_changed_in_the_admin_goes_through_the_service(root, shop):
    response = root.post(
        "/admin/inventory/product/add/", {"sku": "GADGET", "name": "Gadget", "price": "9.50", "stock": "4"}
    )
    assert response.status_code == 302
    gadget = inventory_selectors.products_by_skus(skus={"GADGET"})["GADGET"]
    assert OutboxMessage.objects.filter(type="product.created", aggregate_id=str(gadget.pk)).count() == 1
    duplicate = root.post(
        "/admin/inventory/product/add/", {"sku": "GADGET", "name": "Again", "price": "1", "stock": "1"}
    )
    assert duplicate.status_code == 200 and inventory_selectors.product_list().filter(sku="GADGET").count() == 1
    root.post(
        f"/admin/inventory/product/{gadget.pk}/change/",
        {"sku": "GADGET", "name": "Gadget", "price": "9.50", "stock": "7"},
    )
    assert inventory_selectors.products_by_ids(ids={gadget.pk})[gadget.pk].stock == 7
    assert OutboxMessage.objects.filter(type="product.updated", aggregate_id=str(gadget.pk)).count() == 1


def test_a_product_deleted_in_the_admin_is_announced(root, shop):
    _, product = shop
    response = root.post(f"/admin/inventory/product/{product.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not inventory_selectors.product_list().filter(pk=product.pk).exists()
    assert OutboxMessage.objects.filter(type="product.deleted", aggregate_id=str(product.pk)).count() == 1


def test_a_customer_links_to_their_orders(root, sagas, shop):
    customer, _ = shop
    page = root.get(f"/admin/customers/customer/{customer.pk}/change/").content.decode()
    link = f"/admin/orders/order/?customer_id={customer.pk}"
    assert link in page
    orders = root.get(link)
    assert orders.status_code == 200 and orders.context["cl"].result_count == 5
