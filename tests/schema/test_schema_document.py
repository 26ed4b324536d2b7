"""The schema document itself: valid OpenAPI 3 without a warning from drf-spectacular, the
contract's paths, and every answer declared where it can happen."""

import json

from django.core.management import call_command


def schema(tmp_path) -> dict:
    path = tmp_path / "schema.json"
    call_command("spectacular", "--validate", "--fail-on-warn", "--format", "openapi-json", "--file", str(path))
    return json.loads(path.read_text())


def test_the_schema_is_valid_and_names_the_contracts_paths(db, tmp_path):
    # The router takes each path with and without its trailing slash; the schema names one.
    paths = {path.rstrip("/") for path in schema(tmp_path)["paths"]}
    assert {"/api/customers/{id}", "/api/orders/{id}/cancel", "/api/sagas/{id}/rewind"} <= paths


def test_every_operation_declares_its_error_answers(db, tmp_path):
    document = schema(tmp_path)
    for slashed, operations in document["paths"].items():
        path = slashed.rstrip("/")
        for method, operation in operations.items():
            codes = set(operation["responses"])
            if path == "/api/health":
                assert codes == {"200", "503"}
                continue
            assert {"401", "403", "503"} <= codes, (method, path)
            assert "Retry-After" in operation["responses"]["503"]["headers"]
            if "{id}" in path or method == "get":
                assert "404" in codes, (method, path)
            if "requestBody" in operation:
                assert {"400", "413"} <= codes, (method, path)
                assert set(operation["requestBody"]["content"]) == {"application/json"}
            if method in ("put", "patch", "delete") or path.endswith(("/accept", "/cancel", "/retry", "/compensate")):
                assert "409" in codes, (method, path)


def test_the_schema_says_what_the_api_refuses(db, tmp_path):
    schemas = schema(tmp_path)["components"]["schemas"]
    customer = schemas["CustomerInput"]["properties"]
    assert customer["balance"]["pattern"] == r"^(?:0|[1-9]\d{0,9})(?:\.\d{1,2})?$"  # no sign: not negative
    assert customer["name"]["pattern"] and customer["name"]["maxLength"] == 200
    assert schemas["OrderInput"]["oneOf"] == [{"required": ["items"]}, {"required": ["amount"]}]
    assert schemas["ItemInput"]["oneOf"] == [{"required": ["product_id"]}, {"required": ["sku"]}]
    assert schemas["OrderInput"]["properties"]["items"]["minItems"] == 1
    output_email = schemas["CustomerOutput"]["properties"]["email"]
    assert {"type": "string", "maxLength": 0} in output_email["oneOf"]  # a customer without email


def test_every_error_answer_is_the_one_error_shape(db, tmp_path):
    document = schema(tmp_path)
    errors, checked = document["components"]["schemas"], 0
    one_shape = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    assert set(errors["Error"]["required"]) == {"type", "detail", "code", "errors"}
    assert errors["Error"]["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/ErrorItem"}
    assert set(errors["ErrorItem"]["required"]) == {"code", "detail", "attr"}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if not (status.startswith("4") or status == "503") or path == "/api/health":
                    continue  # health's 503 is its own report of each part, as the contract has it
                assert response["content"] == one_shape, (method, path, status)
                checked += 1
    assert checked > 100
