"""The operator actions through the API: rewind and resolve beside retry and compensate, 403 without
the change permission, 409 on a state conflict, an audit row each, the same Idempotency-Key once."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from saga.models import OperatorAction, SagaInstance, SagaStatus


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def operator_api(operator):
    return api_for(operator)


@pytest.mark.parametrize(
    ("action", "body"),
    [("retry", {}), ("compensate", {}), ("rewind", {"step": "reserve_stock"}), ("resolve", {"comment": "done"})],
)
def test_no_operator_action_without_the_change_permission(viewer, sagas, action, body):
    viewer_api = api_for(viewer)
    for saga in sagas.values():
        assert viewer_api.post(f"/api/sagas/{saga.pk}/{action}", body, format="json").status_code == 403
    assert not OperatorAction.objects.exists()
    assert {s.pk: s.status for s in SagaInstance.objects.all()} == {s.pk: s.status for s in sagas.values()}


@pytest.mark.parametrize(
    ("action", "body"),
    [
        ("retry", {}),
        ("compensate", {"comment": " "}),
        ("rewind", {"step": "reserve_stock"}),
        ("resolve", {"comment": ""}),
    ],
)
def test_every_operator_action_needs_a_comment(operator_api, sagas, action, body):
    """The audit trail says who, when and why: without the why, 400 naming the comment."""
    for saga in sagas.values():
        response = operator_api.post(f"/api/sagas/{saga.pk}/{action}", body, format="json")
        assert response.status_code == 400 and "comment is required" in response.content.decode()
    assert not OperatorAction.objects.exists()
    assert {s.pk: s.status for s in SagaInstance.objects.all()} == {s.pk: s.status for s in sagas.values()}


def test_resolve_answers_the_saga_and_records_who_and_why(operator_api, sagas):
    failed = sagas["failed"]
    response = operator_api.post(f"/api/sagas/{failed.pk}/resolve", {"comment": "refunded by hand"}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "FAILED"
    row = OperatorAction.objects.get()
    assert (row.action, row.username, row.comment, row.outcome) == ("resolve", "operator", "refunded by hand", "done")
    assert operator_api.post(f"/api/sagas/{failed.pk}/resolve", {}, format="json").status_code == 400
    retry = operator_api.post(f"/api/sagas/{failed.pk}/retry", {"comment": "once more"}, format="json")
    assert retry.status_code == 409 and retry.json()["code"] == "saga_state"


def test_resolve_of_a_saga_that_did_not_fail_is_409(operator_api, sagas):
    response = operator_api.post(f"/api/sagas/{sagas['completed'].pk}/resolve", {"comment": "x"}, format="json")
    assert response.status_code == 409 and "only a FAILED one" in response.json()["detail"]
    assert OperatorAction.objects.get().outcome == "refused"


def test_rewind_runs_again_from_a_step_and_refuses_to_cross_the_pivot(operator_api, sagas):
    waiting = sagas["waiting"]
    why = {"comment": "re-check"}
    response = operator_api.post(f"/api/sagas/{waiting.pk}/rewind", {"step": "authorize_payment", **why}, format="json")
    assert response.status_code == 202 and response.json()["current_step"] == "authorize_payment"
    back = operator_api.post(f"/api/sagas/{sagas['failed'].pk}/rewind", {"step": "reserve_stock", **why}, format="json")
    assert back.status_code == 409 and "pivot" in back.json()["detail"]
    unknown = operator_api.post(f"/api/sagas/{waiting.pk}/rewind", {"step": "nope", **why}, format="json")
    assert unknown.status_code == 409 and "no step 'nope'" in unknown.json()["detail"]


def test_the_same_idempotency_key_acts_once(operator_api, sagas):
    failed = sagas["failed"]
    first = operator_api.post(f"/api/sagas/{failed.pk}/retry", {"comment": "one"}, HTTP_IDEMPOTENCY_KEY="k-1")
    again = operator_api.post(f"/api/sagas/{failed.pk}/retry", {"comment": "one"}, HTTP_IDEMPOTENCY_KEY="k-1")
    assert (first.status_code, again.status_code) == (202, 202)
    assert OperatorAction.objects.count() == 1
    other = operator_api.post(
        f"/api/sagas/{sagas['waiting'].pk}/compensate", {"comment": "two"}, HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert other.status_code == 409 and other.json()["code"] == "idempotency_key_reused"
    assert SagaInstance.objects.get(pk=sagas["waiting"].pk).status == SagaStatus.WAITING


def test_each_action_leaves_its_audit_row(operator_api, sagas):
    operator_api.post(f"/api/sagas/{sagas['failed'].pk}/retry", {"comment": "a"}, format="json")
    operator_api.post(f"/api/sagas/{sagas['waiting'].pk}/compensate", {"comment": "b"}, format="json")
    operator_api.post(
        f"/api/sagas/{sagas['stuck'].pk}/rewind", {"step": "reserve_stock", "comment": "c"}, format="json"
    )
    rows = list(OperatorAction.objects.order_by("id").values_list("action", "saga_id", "comment", "outcome"))
    assert rows == [
        ("retry", sagas["failed"].pk, "a", "done"),
        ("compensate", sagas["waiting"].pk, "b", "done"),
        ("rewind", sagas["stuck"].pk, "c", "done"),
    ]


def test_the_schema_documents_the_operator_actions(db):
    user = get_user_model().objects.create_user("reader")
    user.user_permissions.add(Permission.objects.get(codename="view_sagainstance"))
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for action in ("retry", "compensate", "rewind", "resolve"):
        operation = schema["paths"][f"/api/sagas/{{id}}/{action}/"]["post"]
        assert {"403", "409"} <= set(operation["responses"])
    rewind = schema["paths"]["/api/sagas/{id}/rewind/"]["post"]["requestBody"]["content"]["application/json"]
    assert rewind["schema"]["$ref"].endswith("/RewindInput")
    inputs = schema["components"]["schemas"]
    assert "comment" in inputs["OperatorInput"]["required"] and "comment" in inputs["RewindInput"]["required"]
