"""Placing and reading orders over HTTP."""

import uuid
from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from inventory import services as inventory
from orders.apis import MAX_ITEMS, MAX_QUANTITY
from orders.models import Order
from saga.models import OutboxMessage
from tests.conftest import run_concurrently


def place(api, body, key=None):
    headers = {"HTTP_IDEMPOTENCY_KEY": key} if key else {}
    return api.post("/api/orders", body, format="json", **headers)


def test_order_with_items_is_accepted_with_computed_total(api, customer, product):
    response = place(api, {"customer_id": str(customer.pk), "items": [{"sku": "WIDGET", "quantity": 2}]})
    assert response.status_code == 202
    body = response.json()
    assert response["Location"].endswith(f"/api/orders/{body['id']}")
    assert set(body) == {
        "id",
        "customer_id",
        "items",
        "total",
        "status",
        "reason",
        "saga_id",
        "fulfillment",
        "created_at",
        "updated_at",
    }
    assert (body["total"], body["fulfillment"]) == ("50.00", "pickup")
    assert body["items"] == [{"product_id": str(product.pk), "sku": "WIDGET", "quantity": 2, "unit_price": "25.00"}]
    status = api.get(f"/api/orders/{body['id']}/status").json()
    assert status["id"] == body["id"] and status["status"] in {s.value for s in Order.Status}


def test_credit_only_order_uses_the_amount(api, customer):
    response = place(api, {"customer_id": str(customer.pk), "amount": "12.34", "fulfillment": "delivery"})
    assert response.status_code == 202
    assert (response.json()["total"], response.json()["items"]) == ("12.34", [])


def test_unknown_customer_is_still_accepted(api, product):
    response = place(api, {"customer_id": str(uuid.uuid4()), "items": [{"product_id": str(product.pk), "quantity": 1}]})
    assert response.status_code == 202


@pytest.mark.parametrize(
    "items_or_amount",
    [
        {"items": [{"sku": "WIDGET", "quantity": 0}]},
        {"items": [{"sku": "WIDGET", "quantity": -2}]},
        {"items": [{"sku": "WIDGET", "quantity": 10**12}]},
        {"items": [{"sku": "WIDGET", "quantity": "two"}]},
        {"items": [{"quantity": 1}]},
        {"items": []},
        {"items": "WIDGET"},
        {"amount": "0.00"},
        {"amount": "-5"},
        {"amount": "1e99"},
        {},
        {"amount": "5.00", "items": [{"sku": "WIDGET", "quantity": 1}]},
        {"amount": "5.00", "fulfillment": "teleport"},
    ],
)
def test_bad_orders_are_400_and_create_nothing(api, customer, product, items_or_amount):
    response = place(api, {"customer_id": str(customer.pk), **items_or_amount})
    assert response.status_code == 400, response.content
    assert Order.objects.count() == 0


@pytest.mark.parametrize(
    "items",
    [
        [{"sku": "NOPE", "quantity": 1}],
        [{"product_id": "00000000-0000-0000-0000-000000000000", "quantity": 1}],
    ],
)
def test_an_item_naming_no_product_is_409_and_creates_nothing(api, customer, product, items):
    # The request is well-formed (the schema allows it); the catalog has no such product now.
    response = place(api, {"customer_id": str(customer.pk), "items": items})
    assert response.status_code == 409 and response.json()["code"] == "unknown_product", response.content
    assert Order.objects.count() == 0


def test_lines_of_one_product_are_merged_into_one(api, customer, product):
    # By sku twice and by product_id once: one product, so one line of 1 + 2 + 4.
    items = [{"sku": "WIDGET", "quantity": 1}, {"product_id": str(product.pk), "quantity": 2}]
    response = place(api, {"customer_id": str(customer.pk), "items": [*items, {"sku": "WIDGET", "quantity": 4}]})
    assert response.status_code == 202, response.content
    assert response.json()["items"] == [
        {"product_id": str(product.pk), "sku": "WIDGET", "quantity": 7, "unit_price": "25.00"}
    ]
    assert response.json()["total"] == "175.00"
    created = OutboxMessage.objects.get(type="order.created", aggregate_id=response.json()["id"])
    assert [(i["sku"], i["quantity"]) for i in created.payload["items"]] == [("WIDGET", 7)]


def test_merged_lines_keep_the_order_of_their_first_mention(api, customer, product):
    other = inventory.product_create(sku="GADGET", name="Gadget", price=Decimal("1.00"), stock=5)
    items = [{"sku": "GADGET", "quantity": 1}, {"sku": "WIDGET", "quantity": 1}, {"sku": "GADGET", "quantity": 2}]
    response = place(api, {"customer_id": str(customer.pk), "items": items})
    assert [(i["product_id"], i["quantity"]) for i in response.json()["items"]] == [
        (str(other.pk), 3),
        (str(product.pk), 1),
    ]


@pytest.mark.parametrize("second", [{"sku": "WIDGET"}, {"product_id": "the product"}])
def test_lines_of_one_product_add_up_past_one_items_limit(api, customer, product, second):
    # What the schema allows is taken: each item within its limit, however many name one product.
    second = {k: str(product.pk) if v == "the product" else v for k, v in second.items()}
    items = [{"sku": "WIDGET", "quantity": MAX_QUANTITY}, {**second, "quantity": 1}]
    response = place(api, {"customer_id": str(customer.pk), "items": items})
    assert response.status_code == 202, response.content
    assert [i["quantity"] for i in response.json()["items"]] == [MAX_QUANTITY + 1]


def test_a_hundred_full_lines_of_one_product_are_one_line_not_an_overflow(api, customer, product):
    items = [{"sku": "WIDGET", "quantity": MAX_QUANTITY}] * MAX_ITEMS
    response = place(api, {"customer_id": str(customer.pk), "items": items})
    assert response.status_code == 202, response.content
    assert [i["quantity"] for i in response.json()["items"]] == [MAX_QUANTITY * MAX_ITEMS]
    assert response.json()["total"] == str(product.price * MAX_QUANTITY * MAX_ITEMS)


def test_the_same_key_and_body_with_repeated_lines_returns_the_first_order(api, customer, product):
    body = {"customer_id": str(customer.pk), "items": [{"sku": "WIDGET", "quantity": 1}] * 3}
    first, second = place(api, body, key="k-merged"), place(api, body, key="k-merged")
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json() and first.json()["items"][0]["quantity"] == 3
    assert Order.objects.count() == 1


@pytest.mark.parametrize("customer_id", ["nope", None, [], "1234"])
def test_bad_customer_id_is_400(api, customer_id):
    assert place(api, {"customer_id": customer_id, "amount": "1.00"}).status_code == 400


def test_same_idempotency_key_and_body_returns_the_first_order(api, customer):
    body = {"customer_id": str(customer.pk), "amount": "10.00"}
    first, second = place(api, body, key="k-1"), place(api, body, key="k-1")
    assert first.status_code == second.status_code == 202
    assert first.json()["id"] == second.json()["id"]
    assert Order.objects.count() == 1


def test_same_idempotency_key_with_another_body_is_409(api, customer):
    place(api, {"customer_id": str(customer.pk), "amount": "10.00"}, key="k-2")
    response = place(api, {"customer_id": str(customer.pk), "amount": "11.00"}, key="k-2")
    assert response.status_code == 409 and response.json()["code"] == "idempotency_key_reused"
    assert Order.objects.count() == 1


def test_idempotency_key_too_long_is_400(api, customer):
    assert place(api, {"customer_id": str(customer.pk), "amount": "1.00"}, key="k" * 300).status_code == 400


@pytest.mark.django_db(transaction=True)
def test_identical_requests_at_the_same_moment_make_one_order(superuser):
    customer_id = str(uuid.uuid4())

    def request():
        client = APIClient()
        client.force_authenticate(superuser)
        return place(client, {"customer_id": customer_id, "amount": "3.00"}, key="same-moment")

    responses = run_concurrently([request] * 8)
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["id"] for r in responses}) == 1
    assert Order.objects.filter(customer_id=customer_id).count() == 1


def test_orders_are_filtered_by_status_and_customer(api, customer):
    place(api, {"customer_id": str(customer.pk), "amount": "1.00"})
    place(api, {"customer_id": str(uuid.uuid4()), "amount": "1.00"})
    mine = api.get(f"/api/orders?customer_id={customer.pk}").json()
    assert mine["count"] == 1 and mine["results"][0]["customer_id"] == str(customer.pk)
    assert api.get("/api/orders?status=REJECTED&customer_id=" + str(customer.pk)).json()["count"] in (0, 1)
    assert api.get("/api/orders?status=BOGUS").status_code == 400
