"""Invalid input to every write operation of the schema answers the one error shape, with a code
and the field's name for every field error (a dotted path inside lists and nested objects)."""

import pytest
from rest_framework.test import APIClient

from tests.error_shape import error_shape, field_errors

NOT_ANY_FIELD = []  # a JSON array is none of the API's scalar fields, and an empty list for a list field


@pytest.fixture
def concrete_ids(api, customer, product) -> dict[str, str]:
    """A real resource behind each {id} of the write paths, so the body is what gets refused."""
    order = api.post("/api/orders", {"customer_id": str(customer.pk), "amount": "1.00"}, format="json").json()
    return {"customers": str(customer.pk), "products": str(product.pk), "sagas": order["saga_id"]}


def write_operations(api: APIClient) -> list[tuple[str, str, dict]]:
    """(method, path, request body schema) of every operation of the schema that reads a body."""
    document = api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    schemas = document["components"]["schemas"]
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                name = body["schema"]["$ref"].rsplit("/", 1)[-1]
                found.append((method.upper(), path.rstrip("/"), schemas[name]))
    return found


def test_every_write_operation_names_each_bad_field_with_a_code(api, concrete_ids):
    operations = write_operations(api)
    assert {(method, path) for method, path, _ in operations} >= {
        ("POST", "/api/customers"),
        ("PUT", "/api/customers/{id}"),
        ("PATCH", "/api/products/{id}"),
        ("POST", "/api/orders"),
        ("POST", "/api/sagas/{id}/rewind"),
    }
    for method, path, schema in operations:
        concrete = path.replace("{id}", concrete_ids[path.split("/")[2]]) if "{id}" in path else path
        body = dict.fromkeys(schema["properties"], NOT_ANY_FIELD)
        errors = field_errors(getattr(api, method.lower())(concrete, body, format="json"))
        assert set(errors) == set(body), (method, path, errors)


def test_a_nested_field_is_named_by_its_path(api, customer):
    body = {"customer_id": str(customer.pk), "items": [{"sku": "WIDGET", "quantity": 1}, {"sku": "", "quantity": 0}]}
    errors = field_errors(api.post("/api/orders", body, format="json"))
    assert errors == {
        "items.1.sku": [("blank", "This field may not be blank.")],
        "items.1.quantity": [("min_value", "Ensure this value is greater than or equal to 1.")],
    }


def test_a_rule_over_several_fields_has_its_own_code(api, customer):
    item = {"sku": "WIDGET", "product_id": str(customer.pk), "quantity": 1}
    body = {"customer_id": str(customer.pk), "items": [item]}
    errors = field_errors(api.post("/api/orders", body, format="json"))
    assert errors == {"items.0.non_field_errors": [("invalid", "Give either product_id or sku.")]}


def test_the_top_level_detail_says_every_field_error(api):
    body = error_shape(api.post("/api/customers", {"name": "", "balance": "x"}, format="json"), 400, "invalid")
    assert [error["attr"] for error in body["errors"]] == ["name", "balance"]
    assert body["detail"].startswith("name: This field may not be blank. balance: Send an amount")


def test_a_bad_header_is_named_like_a_field(api, customer):
    response = api.post(
        "/api/orders", {"customer_id": str(customer.pk), "amount": "1.00"}, format="json", HTTP_IDEMPOTENCY_KEY=" "
    )
    assert set(field_errors(response)) == {"Idempotency-Key"}


def test_a_bad_query_parameter_is_named_like_a_field(api):
    assert field_errors(api.get("/api/customers?blocked=yes")) == {"blocked": [("invalid", "Must be true or false.")]}


def test_an_answer_that_is_not_about_fields_has_one_error(api):
    body = error_shape(api.get("/api/customers/00000000-0000-0000-0000-000000000000"), 404, "not_found")
    assert body["type"] == "client_error" and body["errors"][0]["attr"] is None
