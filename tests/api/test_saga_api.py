"""Orders' accept / cancel and the sagas API, with sagas driven synchronously by the harness."""

import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from orders.saga import PLACE_ORDER
from saga.models import OutboxMessage
from saga.orchestration import engine
from saga.testing.harness import SagaHarness


@pytest.fixture
def harness():
    return SagaHarness(PLACE_ORDER)


def place(api, customer, **extra):
    body = {"customer_id": str(customer.pk), "amount": "10.00", **extra}
    return api.post("/api/orders", body, format="json").json()


def test_accept_confirms_a_waiting_delivery_order(api, customer, harness):
    order = place(api, customer, fulfillment="delivery")
    harness.run(uuid.UUID(order["saga_id"]))
    assert api.get(f"/api/orders/{order['id']}/status").json()["status"] == "AWAITING_ACCEPTANCE"
    response = api.post(f"/api/orders/{order['id']}/accept")
    assert response.status_code == 202
    harness.run(uuid.UUID(order["saga_id"]))
    assert api.get(f"/api/orders/{order['id']}/status").json() == {
        "id": order["id"],
        "status": "CONFIRMED",
        "reason": None,
    }
    assert api.post(f"/api/orders/{order['id']}/accept").status_code == 409


def test_accept_of_an_order_not_waiting_is_409(api, customer):
    order = place(api, customer)
    response = api.post(f"/api/orders/{order['id']}/accept")
    assert response.status_code == 409 and response.json()["code"] == "order_state"


def test_cancel_rolls_back_and_a_second_cancel_is_409(api, customer, harness):
    order = place(api, customer, fulfillment="delivery")
    harness.run(uuid.UUID(order["saga_id"]))
    assert api.get(f"/api/customers/{customer.pk}").json()["reserved"] == "10.00"
    assert api.post(f"/api/orders/{order['id']}/cancel").status_code == 202
    harness.run(uuid.UUID(order["saga_id"]))
    assert api.get(f"/api/orders/{order['id']}/status").json()["reason"] == "CANCELLED_BY_CUSTOMER"
    assert api.get(f"/api/customers/{customer.pk}").json()["reserved"] == "0.00"
    assert api.post(f"/api/orders/{order['id']}/cancel").status_code == 409


def test_saga_detail_has_the_contract_shape_and_steps(api, customer, harness):
    order = place(api, customer)
    harness.run(uuid.UUID(order["saga_id"]))
    saga = api.get(f"/api/sagas/{order['saga_id']}").json()
    assert set(saga) == {
        "id",
        "type",
        "version",
        "status",
        "current_step",
        "order_id",
        "request_id",
        "error",
        "attempts",
        "deadline",
        "created_at",
        "updated_at",
        "steps",
        "running",
    }
    assert saga["running"] is None  # no attempt under way
    assert (saga["type"], saga["status"], saga["order_id"]) == ("place_order", "COMPLETED", order["id"])
    assert set(saga["steps"][0]) == {"name", "kind", "status", "attempts", "started_at", "finished_at", "error"}
    listed = api.get(f"/api/sagas?order_id={order['id']}&status=COMPLETED&type=place_order").json()
    assert [s["id"] for s in listed["results"]] == [order["saga_id"]]
    assert api.get("/api/sagas?status=NOPE").status_code == 400


@pytest.mark.parametrize("header", ["HTTP_X_REQUEST_ID", "HTTP_X_CORRELATION_ID"])
def test_the_request_id_follows_the_saga(api, customer, header):
    request_id = str(uuid.uuid4())
    response = api.post(
        "/api/orders", {"customer_id": str(customer.pk), "amount": "1.00"}, format="json", **{header: request_id}
    )
    assert response["X-Request-ID"] == request_id
    assert api.get(f"/api/sagas/{response.json()['saga_id']}").json()["request_id"] == request_id


def test_retry_and_compensate_need_the_change_permission(db, customer, superuser):
    admin = APIClient()
    admin.force_authenticate(superuser)
    order = place(admin, customer)
    viewer = get_user_model().objects.create_user("viewer")
    viewer.user_permissions.add(Permission.objects.get(codename="view_sagainstance"))
    client = APIClient()
    client.force_authenticate(viewer)
    assert client.get(f"/api/sagas/{order['saga_id']}").status_code == 200
    assert client.post(f"/api/sagas/{order['saga_id']}/compensate").status_code == 403
    assert admin.get(f"/api/sagas/{order['saga_id']}").json()["status"] == "STARTED"


def test_operator_compensate_then_retry_is_409(api, customer, harness):
    order = place(api, customer, fulfillment="delivery")
    harness.run(uuid.UUID(order["saga_id"]))
    why = {"comment": "the courier went home"}
    assert api.post(f"/api/sagas/{order['saga_id']}/compensate", why, format="json").status_code == 202
    harness.run(uuid.UUID(order["saga_id"]))
    assert api.get(f"/api/orders/{order['id']}/status").json()["status"] == "CANCELLED"
    assert api.post(f"/api/sagas/{order['saga_id']}/retry", why, format="json").status_code == 409
    assert api.post(f"/api/sagas/{order['saga_id']}/compensate", why, format="json").status_code == 409


def _wait_for_the_courier(api, customer, harness):
    order = place(api, customer, fulfillment="delivery")
    harness.run(uuid.UUID(order["saga_id"]))  # waits for the courier, well within its window
    return order


def _retry_the_pivot(api, customer, harness):
    order = place(api, customer)
    harness.raise_in("confirm_order")
    for _ in range(3):  # the failed confirmation waits for its backoff: the saga stays at the pivot
        engine.advance(uuid.UUID(order["saga_id"]), harness.runtime)
    return order


@pytest.mark.parametrize("stopped", [_wait_for_the_courier, _retry_the_pivot])
def test_an_operators_compensate_cancels_the_order_by_the_operator(api, customer, harness, stopped):
    """Neither the wait's timeout nor a step's failure: the operator chose to roll back."""
    order = stopped(api, customer, harness)
    saga_id = uuid.UUID(order["saga_id"])
    response = api.post(f"/api/sagas/{saga_id}/compensate", {"comment": "the customer phoned"}, format="json")
    assert response.status_code == 202
    harness.run(saga_id)
    assert api.get(f"/api/orders/{order['id']}/status").json() == {
        "id": order["id"],
        "status": "CANCELLED",
        "reason": "CANCELLED_BY_OPERATOR",
    }
    ended = OutboxMessage.objects.filter(correlation_id=saga_id, type__in=["order.cancelled", "order.rejected"])
    assert [(m.type, m.payload["reason"]) for m in ended] == [("order.cancelled", "CANCELLED_BY_OPERATOR")]
    assert api.get(f"/api/customers/{customer.pk}").json()["reserved"] == "0.00"


def test_replay_saga_dry_run_and_replay_of_a_completed_saga_change_nothing(api, customer, harness, capsys):
    order = place(api, customer)
    saga_id = uuid.UUID(order["saga_id"])
    call_command("replay_saga", str(saga_id), "--dry-run")
    assert "[dry run]" in capsys.readouterr().out
    assert api.get(f"/api/sagas/{saga_id}").json()["status"] == "STARTED"
    harness.run(saga_id)
    before = api.get(f"/api/sagas/{saga_id}").json()
    call_command("replay_saga", str(saga_id), "--comment", "checking it is finished")
    assert "nothing to do" in capsys.readouterr().out
    assert api.get(f"/api/sagas/{saga_id}").json() == before


@pytest.mark.parametrize(
    "args", [[], ["not-a-uuid"], [str(uuid.uuid4())], ["--all"], ["--all", "--status", "FAILED", "x"]]
)
def test_replay_saga_bad_arguments_are_clear_errors(db, args):
    with pytest.raises(CommandError):
        call_command("replay_saga", *args)
