"""The admin requires staff; session-authenticated writes need the CSRF token, token auth does not."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from customers.models import Customer

from .urlmap import endpoints

# Every admin page, found by walking the admin's URL patterns (a model registered tomorrow is in it).
ADMIN = [e for e in endpoints() if e.namespace == "admin" and e.name != "login"]
LOGIN = "/admin/login/"


@pytest.fixture
def clerk(db):
    """Active, with every model permission, but not staff."""
    user = get_user_model().objects.create_user("clerk")  # no password: no hashing per page
    user.user_permissions.set(Permission.objects.all())
    client = Client()
    client.force_login(user)
    return client


def test_the_walk_finds_the_admin_pages():
    paths = {e.path for e in ADMIN}
    assert {"/admin/", "/admin/orders/order/", "/admin/saga/sagainstance/", "/admin/auth/user/add/"} <= paths


def test_every_admin_page_sends_anyone_but_staff_to_the_login(clerk):
    wrong = []
    for endpoint in ADMIN:
        for client, who in ((Client(), "anonymous"), (clerk, "a non-staff user with every permission")):
            for method in ("get", "post"):
                response = getattr(client, method)(endpoint.path)
                # The admin's logout sends to the admin's index, which sends to the login in turn.
                expected = "/admin/" if endpoint.name == "logout" else f"{LOGIN}?next="
                if response.status_code != 302 or not response["Location"].startswith(expected):
                    wrong.append(f"{method.upper()} {endpoint.path} as {who}: {response.status_code}")
    assert not wrong


def test_staff_get_in_and_model_permissions_still_apply(db):
    staff = get_user_model().objects.create_user("staff", is_staff=True)
    client = Client()
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200
    assert client.get("/admin/customers/customer/").status_code == 403
    staff.user_permissions.add(Permission.objects.get(codename="view_customer"))
    assert client.get("/admin/customers/customer/").status_code == 200


def test_the_admin_login_refuses_a_non_staff_user(db):
    get_user_model().objects.create_user("clerk", password="a-long-password")
    client = Client()
    response = client.post(LOGIN, {"username": "clerk", "password": "a-long-password", "next": "/admin/"})
    assert response.status_code == 200 and b"staff account" in response.content
    assert client.get("/admin/").status_code == 302


NEW_CUSTOMER = {"name": "Grace", "balance": "10.00"}


def session_client(user) -> APIClient:
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    return client


def test_a_session_write_without_the_csrf_token_is_403_and_writes_nothing(superuser):
    client = session_client(superuser)
    response = client.post("/api/customers", NEW_CUSTOMER, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied" and "CSRF" in response.json()["detail"]
    assert not Customer.objects.filter(name="Grace").exists()


def test_a_session_write_with_a_wrong_csrf_token_is_403(superuser):
    client = session_client(superuser)
    client.get("/api/customers", HTTP_ACCEPT="text/html")  # sets the csrftoken cookie
    response = client.post("/api/customers", NEW_CUSTOMER, format="json", HTTP_X_CSRFTOKEN="x" * 32)
    assert response.status_code == 403 and not Customer.objects.filter(name="Grace").exists()


def test_a_session_write_with_the_csrf_token_is_accepted(superuser):
    client = session_client(superuser)
    # The browsable API's page sets the cookie, as it does for a browser; the header carries it back.
    assert client.get("/api/customers", HTTP_ACCEPT="text/html").status_code == 200
    token = client.cookies["csrftoken"].value
    response = client.post("/api/customers", NEW_CUSTOMER, format="json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201
    assert Customer.objects.filter(name="Grace").count() == 1


@pytest.mark.parametrize(("method", "path"), [("post", "/api/orders"), ("post", "/api/customers")])
def test_a_session_write_of_each_kind_needs_the_token(superuser, customer, method, path):
    body = {"customer_id": str(customer.pk), "amount": "1.00"} if "orders" in path else NEW_CUSTOMER
    assert getattr(session_client(superuser), method)(path, body, format="json").status_code == 403


def test_token_auth_needs_no_csrf_token(superuser):
    client = APIClient(enforce_csrf_checks=True)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=superuser).key}")
    assert client.post("/api/customers", NEW_CUSTOMER, format="json").status_code == 201
