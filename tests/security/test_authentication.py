"""Every endpoint but health, schema and docs requires authentication. The endpoints are found by
walking the URL patterns and the schema's operations, so one added tomorrow is checked too."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.error_shape import error_shape

from .urlmap import SAMPLE_ID, Endpoint, endpoints

# The only project endpoints anyone may call: GET /api/health, the OpenAPI schema, Swagger UI.
PUBLIC = {"health", "schema", "docs", "redoc"}
# Other URL namespaces, each with its own rule: the session login form of the browsable API is
# public by nature; the admin requires staff (test_admin.py).
OTHER_RULES = {"rest_framework", "admin"}
METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE")

ALL = endpoints()
PROTECTED = [e for e in ALL if e.namespace not in OTHER_RULES and not (e.namespace == "" and e.name in PUBLIC)]


def _id(endpoint: Endpoint) -> str:
    return endpoint.path


# The challenge each endpoint answers: the API's token, or the metrics' own bearer token.
CHALLENGES = {"/metrics": 'Bearer realm="metrics"'}


def assert_401(response, what: str) -> None:
    assert response.status_code == 401, f"{what} answered {response.status_code} without credentials"
    assert response["WWW-Authenticate"] == CHALLENGES.get(response.request["PATH_INFO"], "Token")
    if response.request["REQUEST_METHOD"] != "HEAD":
        if response.request["PATH_INFO"] in CHALLENGES:  # not the API: only the contract's detail and code
            body = response.json()
            assert {"detail", "code"} <= set(body), f"{what}: {body}"
        else:
            body = error_shape(response, 401)
        assert body["code"] in ("not_authenticated", "authentication_failed"), f"{what}: {body}"


def test_the_walk_finds_the_api_and_the_public_endpoints():
    # A walk that found nothing would make the test below pass vacuously.
    names = {e.name for e in PROTECTED}
    assert {"customer-list", "order-list", "order-accept", "saga-retry", "api-root"} <= names
    assert {e.name for e in ALL if e.namespace == ""} >= PUBLIC, "a public endpoint was renamed: update PUBLIC"


@pytest.mark.parametrize("endpoint", PROTECTED, ids=_id)
def test_every_method_of_every_endpoint_needs_authentication(db, endpoint):
    for method in METHODS:
        response = APIClient().generic(method, endpoint.path)
        assert_401(response, f"{method} {endpoint.path}")


@pytest.mark.parametrize("endpoint", [e for e in ALL if e.name in PUBLIC and e.namespace == ""], ids=_id)
def test_health_schema_and_docs_answer_without_authentication(db, endpoint):
    accept = "application/vnd.oai.openapi+json" if endpoint.name == "schema" else "*/*"
    assert APIClient().get(endpoint.path, HTTP_ACCEPT=accept).status_code in (200, 503)  # health: 503 when degraded


def test_every_operation_of_the_schema_needs_authentication_but_health(db):
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    public, checked = set(), 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method.upper() not in METHODS:
                continue
            security = operation.get("security", schema.get("security"))
            if not security or {} in security:
                public.add((method.upper(), path.rstrip("/")))
                continue
            concrete = path.replace("{id}", SAMPLE_ID)
            assert_401(APIClient().generic(method.upper(), concrete), f"{method.upper()} {path}")
            checked += 1
    assert public == {("GET", "/api/health")}
    assert checked >= 20


@pytest.mark.parametrize("credentials", ["Token not-a-token", "Token ", "Bearer abc", "Basic Zm9vOmJhcg=="])
def test_bad_credentials_are_401(db, credentials):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=credentials)
    assert_401(client.get("/api/customers"), credentials)


def test_the_token_of_a_deactivated_user_is_401(db):
    user = get_user_model().objects.create_superuser("gone", "gone@example.com", None)
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/customers").status_code == 200
    user.is_active = False
    user.save()
    assert_401(client.get("/api/customers"), "a deactivated user's token")
