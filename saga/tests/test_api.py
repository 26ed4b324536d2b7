"""The engine's API routed by the minimal project (saga/tests/urls.py), with DRF's defaults: the
engine must not rely on the project's REST settings for who may read sagas or for its filters."""

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from saga.models import SagaStatus

from .conftest import order_data


def client_with(*perms: str) -> APIClient:
    user = get_user_model().objects.create_user(f"operator-{uuid.uuid4().hex[:6]}")
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="saga", codename__in=perms))
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def sagas(harness, toys) -> dict[str, uuid.UUID]:
    """A completed toy order and one compensated for want of toys, by status."""
    done = harness.run(harness.start(data=order_data(uuid.uuid4(), quantity=1)))
    refused = harness.run(harness.start(data=order_data(uuid.uuid4(), quantity=50)))
    assert (done.status, refused.status) == (SagaStatus.COMPLETED, SagaStatus.COMPENSATED)
    return {done.status: done.id, refused.status: refused.id}


def test_sagas_are_listed_and_filtered_for_those_who_may_view_them(sagas):
    api = client_with("view_sagainstance")
    assert {s["id"] for s in api.get("/api/sagas/").json()} == {str(i) for i in sagas.values()}
    compensated = api.get("/api/sagas/", {"status": "COMPENSATED"}).json()
    assert [s["id"] for s in compensated] == [str(sagas["COMPENSATED"])]


def test_a_saga_shows_its_steps(sagas, harness):
    saga = client_with("view_sagainstance").get(f"/api/sagas/{sagas['COMPLETED']}/").json()
    assert (saga["type"], saga["version"], saga["status"]) == ("toy_order", 1, "COMPLETED")
    assert [(s["name"], s["kind"], s["status"]) for s in saga["steps"]] == harness.steps(sagas["COMPLETED"])


def test_reading_sagas_needs_the_view_permission(sagas):
    assert APIClient().get("/api/sagas/").status_code == 403
    assert client_with().get(f"/api/sagas/{sagas['COMPLETED']}/").status_code == 403


def test_operating_a_saga_needs_the_change_permission_and_a_state_that_allows_it(sagas):
    why = {"comment": "stuck"}
    assert client_with("view_sagainstance").post(f"/api/sagas/{sagas['COMPLETED']}/retry/", why).status_code == 403
    operator = client_with("view_sagainstance", "change_sagainstance")
    response = operator.post(f"/api/sagas/{sagas['COMPLETED']}/compensate/", why)
    assert response.status_code == 409 and "cannot be compensated" in response.json()["detail"]


def test_an_operator_retry_resumes_a_failed_saga(harness, toys):
    harness.refuse_in("reserve_toys", "NO")
    harness.raise_in("reserve_toys", RuntimeError("undo down"), times=10, kind="compensation")
    failed = harness.run(harness.start(data=order_data(uuid.uuid4())))
    assert failed.status == SagaStatus.FAILED
    response = client_with("view_sagainstance", "change_sagainstance").post(
        f"/api/sagas/{failed.id}/retry/", {"comment": "undo is back"}
    )
    assert (response.status_code, response.json()["status"]) == (202, "COMPENSATING")
