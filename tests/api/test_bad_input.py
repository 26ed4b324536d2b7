"""Bad input, every kind a client or an attacker sends: a clear 4xx in the API's one JSON error shape
(tests/error_shape.py: detail and code, and a code for each field error), and nothing in the database changed."""

import json
import uuid
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from customers.models import Customer
from inventory.models import Product
from orders.models import Order
from saga.models import OutboxMessage, SagaInstance
from tests.error_shape import error_shape, field_errors


@pytest.fixture
def superuser(db):
    """The API's superuser without a password: no password hashing for each of these many tests."""
    return get_user_model().objects.create_user("admin", is_staff=True, is_superuser=True)


@pytest.fixture
def state(customer, product):
    """What a refused request must leave as it was."""

    def snapshot() -> dict:
        return {
            "customers": list(Customer.objects.values_list("id", "name", "email", "balance", "blocked")),
            "products": list(Product.objects.values_list("id", "sku", "name", "price", "stock")),
            "orders": Order.objects.count(),
            "sagas": SagaInstance.objects.count(),
            "outbox": OutboxMessage.objects.count(),
        }

    before = snapshot()
    yield before
    assert snapshot() == before, "a refused request changed the database"


def write_paths(customer, product, order_id) -> list[tuple[str, str]]:
    return [
        ("POST", "/api/customers"),
        ("PUT", f"/api/customers/{customer.pk}"),
        ("PATCH", f"/api/customers/{customer.pk}"),
        ("POST", "/api/products"),
        ("PUT", f"/api/products/{product.pk}"),
        ("PATCH", f"/api/products/{product.pk}"),
        ("POST", "/api/orders"),
        ("POST", f"/api/orders/{order_id}/accept"),
        ("POST", f"/api/orders/{order_id}/cancel"),
    ]


@pytest.mark.parametrize("depth", [65, 1_000, 5_000, 100_000])
@pytest.mark.parametrize("shape", ["array", "object"])
def test_deeply_nested_json_is_400_on_every_endpoint(api, customer, product, state, depth, shape):
    body = "[" * depth + "]" * depth if shape == "array" else '{"a":' * depth + "1" + "}" * depth
    for method, path in write_paths(customer, product, uuid.uuid4()):
        response = api.generic(method, path, body, content_type="application/json")
        if path.endswith(("/accept", "/cancel")):  # they read no body: the unknown order is what is wrong
            error_shape(response, 404, "not_found")
        else:
            assert "nested deeper than 64" in error_shape(response, 400, "parse_error")["detail"]


def test_json_nested_within_the_limit_is_read(api):
    extra = json.loads("[" * 60 + "]" * 60)
    response = api.post("/api/customers", {"name": "Deep", "balance": "1.00", "extra": extra}, format="json")
    assert response.status_code == 201


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/customers", '{"name": "A", "name": "B", "balance": "1.00"}'),
        ("/api/products", '{"sku": "D", "name": "D", "price": "1.00", "stock": 1, "stock": 2}'),
        ("/api/orders", '{"customer_id": "' + str(uuid.uuid4()) + '", "amount": "1.00", "amount": "2.00"}'),
        (
            "/api/orders",
            '{"customer_id": "' + str(uuid.uuid4()) + '", "items": [{"sku": "WIDGET", "quantity": 1, "quantity": 9}]}',
        ),
    ],
)
def test_duplicated_keys_are_400(api, state, path, body):
    assert (
        "duplicated key" in error_shape(api.generic("POST", path, body, content_type="application/json"), 400)["detail"]
    )


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "NaN", "balance": NaN}',
        '{"name": "Inf", "balance": Infinity}',
        '{"name": "Digits", "balance": ' + "9" * 5000 + "}",
        '{"name": "\\ud800", "balance": "1.00"}',  # a lone surrogate
        b'{"name": "\xff\xfe", "balance": "1.00"}',  # not UTF-8
        "",
        "{",
        "null",
        '"a string"',
    ],
)
def test_malformed_json_is_400(api, state, body):
    error_shape(api.generic("POST", "/api/customers", body, content_type="application/json"), 400)


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        # wrong types: what the schema calls a string, integer, boolean or UUID, and nothing else
        ("/api/customers", {"name": 5, "balance": "1.00"}),
        ("/api/customers", {"name": "A", "balance": 1}),
        ("/api/customers", {"name": "A", "balance": 1.5}),
        ("/api/customers", {"name": "A", "balance": "1.00", "blocked": "yes"}),
        ("/api/customers", {"name": "A", "balance": "1.00", "blocked": 1}),
        ("/api/customers", {"name": ["A"], "balance": "1.00"}),
        ("/api/customers", {"name": "A", "balance": "1.00", "email": 5}),
        ("/api/products", {"sku": "S", "name": "S", "price": "1.00", "stock": "5"}),
        ("/api/products", {"sku": "S", "name": "S", "price": "1.00", "stock": True}),
        ("/api/products", {"sku": "S", "name": "S", "price": "1.00", "stock": 1.5}),
        ("/api/orders", {"customer_id": 123, "amount": "1.00"}),
        ("/api/orders", {"customer_id": "0123456789abcdef0123456789abcdef", "amount": "1.00"}),
        ("/api/orders", {"customer_id": str(uuid.uuid4()), "items": {"sku": "WIDGET", "quantity": 1}}),
        ("/api/orders", {"customer_id": str(uuid.uuid4()), "items": [{"sku": "WIDGET", "quantity": "2"}]}),
        ("/api/orders", {"customer_id": str(uuid.uuid4()), "items": [["WIDGET", 1]]}),
        # huge and negative numbers
        ("/api/customers", {"name": "A", "balance": "-1.00"}),
        ("/api/customers", {"name": "A", "balance": "99999999999.00"}),
        ("/api/customers", {"name": "A", "balance": "1e3"}),
        ("/api/customers", {"name": "A", "balance": " 1.00"}),
        ("/api/customers", {"name": "A", "balance": "01.00"}),
        ("/api/products", {"sku": "S", "name": "S", "price": "-0.01", "stock": 1}),
        ("/api/products", {"sku": "S", "name": "S", "price": "1.00", "stock": -1}),
        ("/api/products", {"sku": "S", "name": "S", "price": "1.00", "stock": 10**400}),
        ("/api/products", {"sku": "S", "name": "S", "price": "1.00", "stock": 2**31}),
        ("/api/orders", {"customer_id": str(uuid.uuid4()), "amount": "0"}),
        ("/api/orders", {"customer_id": str(uuid.uuid4()), "amount": "-10.00"}),
        ("/api/orders", {"customer_id": str(uuid.uuid4()), "items": [{"sku": "WIDGET", "quantity": 10**30}]}),
        ("/api/orders", {"customer_id": str(uuid.uuid4()), "items": [{"sku": "WIDGET", "quantity": -1}]}),
        ("/api/orders", {"customer_id": str(uuid.uuid4()), "items": [{"sku": "WIDGET", "quantity": 1}] * 101}),
        # blank, very long and unstorable strings
        ("/api/customers", {"name": "", "balance": "1.00"}),
        ("/api/customers", {"name": " \t\n", "balance": "1.00"}),
        ("/api/customers", {"name": "x" * 201, "balance": "1.00"}),
        ("/api/customers", {"name": "é" * 100_000, "balance": "1.00"}),
        ("/api/customers", {"name": "nul\x00byte", "balance": "1.00"}),
        ("/api/customers", {"name": "A", "balance": "1.00", "email": "a@" + "b" * 300 + ".com"}),
        ("/api/customers", {"name": "A", "balance": "1.00", "email": "not an email"}),
        ("/api/products", {"sku": " S", "name": "S", "price": "1.00", "stock": 1}),
        ("/api/products", {"sku": "S\n", "name": "S", "price": "1.00", "stock": 1}),
        ("/api/products", {"sku": "ß", "name": "S", "price": "1.00", "stock": 1}),
        ("/api/orders", {"customer_id": str(uuid.uuid4()), "items": [{"sku": "", "quantity": 1}]}),
    ],
)
def test_bad_values_are_400_field_errors(api, state, path, payload):
    assert all(field_errors(api.post(path, payload, format="json")))  # each error names its field


@pytest.mark.parametrize(
    ("path", "payload", "field"),
    [
        ("/api/orders", {"customer_id": str(uuid.uuid4()), "amount": "99999999999999999999.99"}, "amount"),
        ("/api/customers", {"name": "A", "balance": "10000000000"}, "balance"),
        ("/api/products", {"sku": "S", "name": "S", "price": "12345678901.5", "stock": 1}, "price"),
    ],
)
def test_an_amount_too_large_says_so_with_the_largest(api, state, path, payload, field):
    errors = field_errors(api.post(path, payload, format="json"))
    assert errors == {field: [("max_value", "Send an amount of at most 9999999999.99.")]}


def test_text_with_a_nul_is_refused_for_the_nul_alone(api, state):
    errors = field_errors(api.post("/api/customers", {"name": "nul\x00byte", "balance": "1.00"}, format="json"))
    assert errors == {"name": [("null_characters_not_allowed", "Null characters are not allowed.")]}


def test_unicode_is_kept_as_sent(api):
    name = "Zoë 名前 🎉 \u200f عربى  "  # non-ASCII, an emoji, a right-to-left mark, trailing spaces
    response = api.post("/api/customers", {"name": name, "balance": "1.00"}, format="json")
    assert response.status_code == 201 and response.json()["name"] == name
    assert Customer.objects.get(pk=response.json()["id"]).name == name


def test_an_oversized_body_is_413(api, state):
    body = json.dumps({"name": "A", "balance": "1.00", "pad": "x" * (1024 * 1024)})
    error_shape(api.generic("POST", "/api/customers", body, content_type="application/json"), 413, "request_too_large")


def test_a_wrong_content_type_is_400(api, state):
    response = api.generic(
        "POST", "/api/customers", "name=A&balance=1.00", content_type="application/x-www-form-urlencoded"
    )
    error_shape(response, 400, "unsupported_media_type")


@pytest.mark.parametrize("key", ["k" * 256, "tab\tinside", "ü-umlaut", " "])
def test_a_bad_idempotency_key_is_400(api, customer, state, key):
    response = api.post(
        "/api/orders", {"customer_id": str(customer.pk), "amount": "1.00"}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert set(field_errors(response)) == {"Idempotency-Key"}


@pytest.mark.parametrize(
    "path",
    [
        f"/api/customers/{uuid.uuid4()}",
        f"/api/products/{uuid.uuid4()}",
        f"/api/orders/{uuid.uuid4()}",
        f"/api/orders/{uuid.uuid4()}/status",
        f"/api/sagas/{uuid.uuid4()}",
        "/api/customers/not-a-uuid",
        "/api/customers/%00",
        "/api/customers/..%2F..%2Fetc",
        "/api/customers/%F0%9F%98%80",
        "/api/orders/%20/status",
        "/api/nothing-here",
        "/api/customers/1/2/3",
    ],
)
def test_unknown_ids_and_odd_paths_are_the_json_404(api, state, path):
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        response = api.generic(method, path, "{}", content_type="application/json")
        if response.status_code == 405:  # a known path that does not take this method
            continue
        error_shape(response, 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/api/customers"),
        ("DELETE", "/api/products"),
        ("PUT", "/api/orders"),
        ("DELETE", "/api/orders/{order}"),
        ("GET", "/api/orders/{order}/cancel"),
        ("POST", "/api/sagas"),
        ("POST", "/api/health"),
    ],
)
def test_wrong_methods_are_405_with_allow(api, customer, state, method, path):
    order = uuid.uuid4()
    response = api.generic(method, path.format(order=order), "{}", content_type="application/json")
    error_shape(response, 405, "method_not_allowed")
    assert method not in response["Allow"]


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "not_authenticated"),
        ("Token " + "z" * 40, "authentication_failed"),  # no such token
        ("Token", "authentication_failed"),
        ("Token a b", "authentication_failed"),
        ("Token \u00e9", "authentication_failed"),
        ("Bearer whatever", "not_authenticated"),
    ],
)
def test_missing_or_bad_auth_is_401(db, customer, state, header, code):
    client = APIClient()
    if header is not None:
        client.credentials(HTTP_AUTHORIZATION=header)
    for method, path in [
        ("GET", "/api/customers"),
        ("POST", "/api/customers"),
        ("DELETE", f"/api/customers/{customer.pk}"),
        ("GET", "/api/no-such-thing"),  # 401 before 404: nothing is told without credentials
    ]:
        response = client.generic(
            method, path, json.dumps({"name": "A", "balance": "1.00"}), content_type="application/json"
        )
        error_shape(response, 401, code)
        assert response["WWW-Authenticate"] == "Token"


def test_without_permission_is_403(db, customer, state):
    user = get_user_model().objects.create_user("nobody")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    error_shape(
        client.post("/api/customers", {"name": "A", "balance": "1.00"}, format="json"), 403, "permission_denied"
    )
    error_shape(client.delete(f"/api/customers/{customer.pk}"), 403, "permission_denied")
    Token.objects.filter(user=user).delete()
    user.delete()


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("blocked=null", 400),
        ("blocked=yes", 400),
        ("blocked=", 400),
        ("page=last", 404),
        ("page=0", 404),
        ("page=-1", 404),
        ("page=", 404),
        ("page=99999", 404),
        ("email=%00", 400),
    ],
)
def test_bad_query_parameters_are_4xx(api, state, query, status):
    error_shape(api.get(f"/api/customers?{query}"), status)


@pytest.mark.parametrize("query", ["status=", "status=pending", "customer_id=", "customer_id=123", "page=last"])
def test_bad_order_and_saga_filters_are_4xx(api, state, query):
    for path in ("/api/orders", "/api/sagas"):
        response = api.get(f"{path}?{query.replace('customer_id', 'order_id' if 'sagas' in path else 'customer_id')}")
        assert response.status_code in (400, 404)
        error_shape(response, response.status_code)


def test_a_valid_order_with_an_unknown_customer_is_still_accepted(api, product):
    # The contract: the orders context does not read the customers' tables; the saga rejects it.
    response = api.post("/api/orders", {"customer_id": str(uuid.uuid4()), "amount": "1.00"}, format="json")
    assert response.status_code == 202


def test_a_total_beyond_the_largest_amount_is_409(api, customer, state):
    pricey = Product.objects.create(sku="PRICEY", name="Pricey", price=Decimal("9999999999.99"), stock=10)
    body = {"customer_id": str(customer.pk), "items": [{"sku": "PRICEY", "quantity": 10_000}]}
    error_shape(api.post("/api/orders", body, format="json"), 409, "total_too_large")
    pricey.delete()


def test_the_schema_and_docs_without_their_slash_redirect(api):
    for path in ("/api/schema", "/api/docs"):
        response = api.get(path)
        assert response.status_code == 301 and response["Location"] == path + "/"
