"""Model permissions on every operation of the API: reads need `view_<model>`, customer and product
writes their `add_`/`change_`/`delete_`, placing an order `orders.add_order`, the operator actions
(order accept/cancel, saga retry/compensate) `change_`. The table below must name every operation
of the schema, so a new endpoint fails here until its permission is decided."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from customers.models import Customer
from inventory.models import Product
from orders.models import Order
from saga.models import SagaInstance
from tests.error_shape import error_shape

REQUIRED = {
    ("GET", "/api/customers"): "customers.view_customer",
    ("POST", "/api/customers"): "customers.add_customer",
    ("GET", "/api/customers/{id}"): "customers.view_customer",
    ("PUT", "/api/customers/{id}"): "customers.change_customer",
    ("PATCH", "/api/customers/{id}"): "customers.change_customer",
    ("DELETE", "/api/customers/{id}"): "customers.delete_customer",
    ("GET", "/api/products"): "inventory.view_product",
    ("POST", "/api/products"): "inventory.add_product",
    ("GET", "/api/products/{id}"): "inventory.view_product",
    ("PUT", "/api/products/{id}"): "inventory.change_product",
    ("PATCH", "/api/products/{id}"): "inventory.change_product",
    ("DELETE", "/api/products/{id}"): "inventory.delete_product",
    ("GET", "/api/orders"): "orders.view_order",
    ("POST", "/api/orders"): "orders.add_order",
    ("GET", "/api/orders/{id}"): "orders.view_order",
    ("GET", "/api/orders/{id}/status"): "orders.view_order",
    ("POST", "/api/orders/{id}/accept"): "orders.change_order",
    ("POST", "/api/orders/{id}/cancel"): "orders.change_order",
    ("GET", "/api/sagas"): "saga.view_sagainstance",
    ("GET", "/api/sagas/{id}"): "saga.view_sagainstance",
    ("POST", "/api/sagas/{id}/retry"): "saga.change_sagainstance",
    ("POST", "/api/sagas/{id}/compensate"): "saga.change_sagainstance",
    ("POST", "/api/sagas/{id}/rewind"): "saga.change_sagainstance",
    ("POST", "/api/sagas/{id}/resolve"): "saga.change_sagainstance",
}
PUBLIC = {("GET", "/api/health")}


@pytest.fixture
def shop(superuser, customer, product):
    """One of each resource, placed by an administrator; the ids the table's paths name."""
    admin = APIClient()
    admin.force_authenticate(superuser)
    body = {"customer_id": str(customer.pk), "items": [{"sku": product.sku, "quantity": 1}], "fulfillment": "delivery"}
    order = admin.post("/api/orders", body, format="json").json()
    return {"customers": customer.pk, "products": product.pk, "orders": order["id"], "sagas": order["saga_id"]}


def bodies(shop: dict) -> dict[tuple[str, str], dict]:
    customer = {"name": "Renamed", "email": "r@example.com", "balance": "600.00"}
    product = {"sku": "WIDGET", "name": "Renamed", "price": "30.00", "stock": 20}
    return {
        ("POST", "/api/customers"): {"name": "New", "balance": "1.00"},
        ("PUT", "/api/customers/{id}"): customer,
        ("PATCH", "/api/customers/{id}"): {"name": "Renamed"},
        ("POST", "/api/products"): {"sku": "NEW", "name": "New", "price": "1.00", "stock": 1},
        ("PUT", "/api/products/{id}"): product,
        ("PATCH", "/api/products/{id}"): {"name": "Renamed"},
        ("POST", "/api/orders"): {"customer_id": str(shop["customers"]), "amount": "1.00"},
        ("POST", "/api/sagas/{id}/retry"): {"comment": "checked the provider"},
        ("POST", "/api/sagas/{id}/compensate"): {"comment": "the customer phoned"},
        ("POST", "/api/sagas/{id}/rewind"): {"step": "reserve_stock", "comment": "re-check the stock"},
        ("POST", "/api/sagas/{id}/resolve"): {"comment": "checked by hand"},
    }


def call(client: APIClient, shop: dict, method: str, path: str):
    resource = path.split("/")[2]
    concrete = path.replace("{id}", str(shop[resource]))
    body = bodies(shop).get((method, path))
    return client.generic(method, concrete, json.dumps(body) if body else "", content_type="application/json")


def user_with(permissions) -> APIClient:
    user = get_user_model().objects.create_user(f"user{get_user_model().objects.count()}")
    user.user_permissions.set(permissions)
    client = APIClient()
    client.force_authenticate(user)
    return client


def permission(name: str):
    app_label, codename = name.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def snapshot() -> tuple:
    """What a refused request must leave as it was."""
    return (
        sorted(Customer.objects.values_list("id", "name", "email", "balance", "blocked")),
        sorted(Product.objects.values_list("id", "sku", "name", "price", "stock")),
        sorted(Order.objects.values_list("id", "status")),
        sorted(SagaInstance.objects.values_list("id", "status", "direction", "current_step")),
    )


def test_the_table_names_every_operation_of_the_schema(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operations = {
        (method.upper(), path.rstrip("/"))
        for path, ops in schema["paths"].items()
        for method in ops
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert operations - PUBLIC == set(REQUIRED), "decide the permission of each new operation in REQUIRED"


@pytest.mark.parametrize(("method", "path"), list(REQUIRED), ids=[f"{method} {path}" for method, path in REQUIRED])
def test_without_its_permission_an_operation_is_403_and_changes_nothing(shop, method, path):
    # Every permission there is, but the one the operation needs: the check is for that one.
    everything_else = Permission.objects.exclude(pk=permission(REQUIRED[method, path]).pk)
    before = snapshot()
    response = call(user_with(everything_else), shop, method, path)
    error_shape(response, 403, "permission_denied")
    assert snapshot() == before


@pytest.mark.parametrize(("method", "path"), list(REQUIRED), ids=[f"{method} {path}" for method, path in REQUIRED])
def test_with_only_its_permission_an_operation_is_allowed(shop, method, path):
    response = call(user_with([permission(REQUIRED[method, path])]), shop, method, path)
    # Allowed: it did its work, or refused on the merits (409: a referenced customer, a saga's state).
    assert response.status_code in (200, 201, 202, 204, 409), response.content
