"""Customers and products over HTTP: shapes, validation, permissions, conflicts."""

import uuid
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from customers import selectors as customers_selectors
from customers import services as customers
from inventory import services as inventory
from inventory.services import Line
from tests.conftest import run_concurrently, while_uncommitted
from tests.error_shape import error_shape, field_errors


def test_create_customer_answers_the_contract_shape(api):
    response = api.post("/api/customers", {"name": "Ada", "email": "ada@example.com", "balance": "500"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert set(body) == {"id", "name", "email", "balance", "reserved", "available", "blocked", "created_at"}
    assert (body["balance"], body["reserved"], body["available"], body["blocked"]) == (
        "500.00",
        "0.00",
        "500.00",
        False,
    )
    assert api.get(f"/api/customers/{body['id']}").json() == body


@pytest.mark.parametrize(
    "payload",
    [
        {"name": "Neg", "balance": "-1.00"},
        {"name": "Text", "balance": "lots"},
        {"name": "Huge", "balance": "1e30"},
        {"name": "Many places", "balance": "1.001"},
        {"name": "NaN", "balance": "NaN"},
        {"balance": "1.00"},
        {"name": "Mail", "balance": "1.00", "email": "not-an-email"},
        {"name": "x" * 201, "balance": "1.00"},
    ],
)
def test_bad_customers_are_refused_with_field_errors(api, payload):
    response = api.post("/api/customers", payload, format="json")
    assert len(field_errors(response)) == 1 and set(field_errors(response)) <= {"name", "balance", "email"}
    assert api.get("/api/customers").json()["count"] == 0


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("{not json", "application/json"),
        ("name=a&balance=1", "text/plain"),
        ("[1, 2]", "application/json"),
        ('{"name": "inf", "balance": 1e400}', "application/json"),
        ('{"name": "big", "balance": 123456789012345678901234567890}', "application/json"),
        ("", "application/json"),
    ],
)
def test_malformed_bodies_are_400_and_create_nothing(api, body, content_type):
    response = api.generic("POST", "/api/customers", body, content_type=content_type)
    assert response.status_code == 400
    assert api.get("/api/customers").json()["count"] == 0


def test_an_oversized_body_is_413(api):
    body = '{"name": "' + "x" * (2 * 1024 * 1024) + '", "balance": "1.00"}'
    response = api.generic("POST", "/api/customers", body, content_type="application/json")
    assert response.status_code == 413 and response.json()["code"] == "request_too_large"


def test_unknown_and_malformed_ids_are_404(api):
    assert api.get(f"/api/customers/{uuid.uuid4()}").status_code == 404
    assert api.get("/api/customers/not-a-uuid").status_code == 404
    assert api.get(f"/api/products/{uuid.uuid4()}").status_code == 404


def test_patch_below_held_funds_is_409_and_changes_nothing(api, customer):
    customers.funds_hold(order_id=uuid.uuid4(), customer_id=customer.pk, amount=Decimal("100.00"))
    response = api.patch(f"/api/customers/{customer.pk}", {"balance": "99.99"}, format="json")
    # A valid balance, refused for the funds held now: a conflict with the state, not bad input.
    assert response.status_code == 409 and response.json()["code"] == "conflict"
    assert "funds held" in response.json()["detail"]
    assert api.get(f"/api/customers/{customer.pk}").json()["balance"] == "500.00"


def test_deleting_a_customer_that_orders_refer_to_is_409(api, customer):
    customers.funds_hold(order_id=uuid.uuid4(), customer_id=customer.pk, amount=Decimal("1.00"))
    response = api.delete(f"/api/customers/{customer.pk}")
    assert response.status_code == 409 and response.json()["code"] == "still_referenced"
    assert api.get(f"/api/customers/{customer.pk}").status_code == 200


def test_deleting_an_unreferenced_customer_works(api, customer):
    assert api.delete(f"/api/customers/{customer.pk}").status_code == 204
    assert api.get(f"/api/customers/{customer.pk}").status_code == 404


def test_an_email_taken_in_another_case_is_409_and_creates_nothing(api, customer):
    response = api.post("/api/customers", {"name": "Ada 2", "email": "ADA@Example.com", "balance": "1"}, format="json")
    assert error_shape(response, 409, "conflict")["detail"] == "A customer with this email already exists."
    assert api.get("/api/customers").json()["count"] == 1


@pytest.mark.parametrize("method", ["put", "patch"])
def test_changing_to_an_email_another_customer_has_is_409(api, customer, method):
    grace = customers.customer_create(name="Grace", email="grace@example.com", balance=Decimal("1.00"))
    body = {"name": "Grace", "email": "Ada@example.com", "balance": "1.00"}
    response = getattr(api, method)(f"/api/customers/{grace.pk}", body, format="json")
    assert response.status_code == 409 and response.json()["code"] == "conflict"
    assert api.get(f"/api/customers/{grace.pk}").json()["email"] == "grace@example.com"


def test_a_customer_may_change_the_case_of_its_own_email(api, customer):
    response = api.patch(f"/api/customers/{customer.pk}", {"email": "ADA@example.com"}, format="json")
    assert response.status_code == 200 and response.json()["email"] == "ADA@example.com"


def test_customers_without_email_are_many(api):
    for name in ("A", "B", "C"):
        assert api.post("/api/customers", {"name": name, "balance": "1.00"}, format="json").status_code == 201
    assert api.post("/api/customers", {"name": "D", "email": "", "balance": "1"}, format="json").status_code == 201
    assert api.get("/api/customers").json()["count"] == 4


@pytest.mark.django_db(transaction=True)
def test_two_creates_of_one_email_at_once_make_one_customer(superuser):
    def create(email: str):
        client = APIClient()
        client.force_authenticate(superuser)
        return client.post("/api/customers", {"name": "Grace", "email": email, "balance": "500.00"}, format="json")

    # Both pass every check before either commits: only the database can refuse the second.
    responses = run_concurrently([lambda: create("grace@example.com"), lambda: create("Grace@Example.com")])
    assert sorted(r.status_code for r in responses) == [201, 409]
    assert customers_selectors.customer_list().filter(email__iexact="grace@example.com").count() == 1


@pytest.mark.django_db(transaction=True)
def test_an_email_taken_in_a_transaction_that_commits_after_the_check_is_409(api):
    # The service's check cannot see the other customer, written but not committed: the unique
    # index makes the create wait, and refuses it once the other commits.
    response = while_uncommitted(
        lambda: customers.customer_create(name="Grace", email="grace@example.com", balance=Decimal("1.00")),
        lambda: api.post(
            "/api/customers", {"name": "Grace 2", "email": "Grace@Example.com", "balance": "1"}, format="json"
        ),
    )
    assert error_shape(response, 409, "conflict")["detail"] == "A customer with this email already exists."
    assert customers_selectors.customer_list().filter(email__iexact="grace@example.com").count() == 1


def test_products_crud_and_unique_sku(api):
    created = api.post("/api/products", {"sku": "W-1", "name": "W", "price": "2.50", "stock": 3}, format="json")
    assert created.status_code == 201
    assert created.json() | {"id": None} == {
        "id": None,
        "sku": "W-1",
        "name": "W",
        "price": "2.50",
        "stock": 3,
        "reserved": 0,
        "available": 3,
    }
    again = api.post("/api/products", {"sku": "W-1", "name": "W", "price": "2.50", "stock": 3}, format="json")
    assert error_shape(again, 409, "conflict")["detail"] == "A product with this sku already exists."
    put = api.put(
        f"/api/products/{created.json()['id']}", {"sku": "W-1", "name": "W2", "price": "3", "stock": 4}, format="json"
    )
    assert put.status_code == 200 and put.json()["name"] == "W2" and put.json()["price"] == "3.00"


@pytest.mark.parametrize("stock", [-1, "many", 2**40, 1.5])
def test_bad_stock_is_400(api, stock):
    response = api.post("/api/products", {"sku": "S", "name": "S", "price": "1.00", "stock": stock}, format="json")
    assert set(field_errors(response)) == {"stock"}


def test_deleting_a_reserved_product_is_409(api, product):
    inventory.stock_reserve(order_id=uuid.uuid4(), lines=[Line(product.pk, 1)])
    assert api.delete(f"/api/products/{product.pk}").status_code == 409
    assert api.get(f"/api/products/{product.pk}").status_code == 200


def test_lists_are_paginated_and_filtered(api):
    for n in range(55):
        customers.customer_create(name=f"c{n}", balance=Decimal("1.00"), blocked=n == 3)
    page = api.get("/api/customers").json()
    assert (page["count"], len(page["results"]), page["previous"]) == (55, 50, None)
    assert len(api.get(page["next"]).json()["results"]) == 5
    blocked = api.get("/api/customers?blocked=true").json()
    assert [c["name"] for c in blocked["results"]] == ["c3"]


def test_unauthenticated_is_401(db):
    assert APIClient().get("/api/customers").status_code == 401


def test_token_auth_and_model_permissions(db):
    user = get_user_model().objects.create_user("clerk", password="pw")
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/customers").status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="view_customer"))
    assert client.get("/api/customers").status_code == 200
    assert client.post("/api/customers", {"name": "x", "balance": "1"}, format="json").status_code == 403


def test_openapi_schema_and_swagger_ui(api):
    schema = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert schema.status_code == 200
    assert any(path.startswith("/api/orders") for path in schema.json()["paths"])
    assert api.get("/api/docs/").status_code == 200


def test_browsable_api_renders_html(api):
    response = api.get("/api/customers", HTTP_ACCEPT="text/html")
    assert response.status_code == 200 and b"<html" in response.content
