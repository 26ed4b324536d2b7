"""The saga list and page, and the operator actions from the admin: each asks for confirmation,
is permission-guarded, leaves its audit row, and does nothing twice."""

import re

import pytest
from django.contrib.auth import get_user_model

from orders.models import Order
from saga.models import OperatorAction, SagaInstance, SagaStatus

from .conftest import client_for


@pytest.fixture
def root(db):
    return client_for(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))


def listed(client, query: str = "") -> list[str]:
    """The short ids of the sagas the list shows."""
    page = client.get(f"/admin/saga/sagainstance/{query}").content.decode()
    return re.findall(r'<code title="[0-9a-f-]{36}">([0-9a-f]{8})</code><br>', page)


def short(saga) -> str:
    return str(saga.pk)[:8]


def test_the_list_filters_by_status_stuck_attention_type_and_start(root, sagas):
    assert len(listed(root)) == 5
    assert listed(root, "?status__exact=FAILED") == [short(sagas["failed"])]
    assert listed(root, "?stuck=yes") == [short(sagas["stuck"])]
    assert short(sagas["stuck"]) not in listed(root, "?stuck=no")
    assert listed(root, "?resolved=no") == [short(sagas["failed"])]
    assert len(listed(root, "?type=place_order")) == 5
    assert set(listed(root, "?started=1h")) == {short(sagas[k]) for k in ("compensated", "failed", "waiting", "stuck")}


def test_the_list_shows_status_order_step_attempts_age_reason_and_error(root, sagas):
    page = root.get("/admin/saga/sagainstance/").content.decode()
    failed = sagas["failed"]
    assert f"/admin/orders/order/{failed.aggregate_id}/change/" in page
    assert "capture_<wbr>payment</" in page
    assert "its worker died 5 times" in page and "INSUFFICIENT_<wbr>CREDIT" in page
    assert "⚠ stuck 7 min" in page and "place_order v2" in page


def test_the_list_is_searched_by_saga_order_and_customer_id(root, sagas, shop):
    customer, _ = shop
    failed = sagas["failed"]
    assert listed(root, f"?q={failed.pk}") == [short(failed)]
    assert listed(root, f"?q={short(failed)}") == [short(failed)]
    assert listed(root, f"?q={failed.aggregate_id}") == [short(failed)]
    assert len(listed(root, f"?q={customer.pk}")) == 5
    assert listed(root, "?q=no-such-thing") == []


def test_the_saga_page_shows_timeline_diagram_messages_data_and_links(root, sagas, shop):
    customer, _ = shop
    failed = sagas["failed"]
    page = root.get(f"/admin/saga/sagainstance/{failed.pk}/change/").content.decode()
    timeline = page[page.index('id="saga-timeline"') : page.index('id="saga-data"')]
    assert timeline.count(">CRASHED<") == 5 and timeline.count(">FAILED<") == 1
    assert "★ pivot confirm_order passed" in timeline
    first = failed.steps.order_by("id").first()
    assert first.started_at.strftime("%H:%M:%S.%f")[:-3] in timeline
    diagram = page[page.index("<svg xmlns") : page.index("</svg>", page.index("<svg xmlns"))]
    assert diagram.count('class="step ') == 11  # eight steps, three compensations
    assert 'data-step="capture_payment"><rect' in diagram and "box current" in diagram
    assert (
        "★ pivot" in diagram
        and "point of no return" in diagram
        and "http" not in diagram.replace('xmlns="http://www.w3.org/2000/svg"', "")
    )
    assert "order.confirmed" in page and "saga.failed" in page  # its outbox messages
    assert "<th>customer_id</th>" in page and "<th>quantity</th>" in page  # the data as tables
    assert f"/admin/orders/order/{failed.aggregate_id}/change/" in page
    assert f"/admin/customers/customer/{customer.pk}/change/" in page and "Ada Lovelace" in page


def test_a_waiting_saga_shows_the_event_it_waits_for(root, sagas):
    page = root.get(f"/admin/saga/sagainstance/{sagas['waiting'].pk}/change/").content.decode()
    assert "waiting for event <code>fulfillment.accepted</code>" in page
    assert 'class="step state-waiting" data-step="await_acceptance"' in page


def confirm_token(page: str) -> str:
    return re.search(r'name="token" value="([0-9a-f]+)"', page).group(1)


def operate(client, saga, action: str, **fields):
    url = f"/admin/saga/sagainstance/{saga.pk}/operate/{action}/"
    page = client.get(url)
    assert page.status_code == 200 and b"are you sure?" in page.content
    token = confirm_token(page.content.decode())
    return client.post(url, {"token": token, **fields}), url, token


def test_retry_asks_then_resumes_and_leaves_its_audit_row_once(operator, sagas):
    client = client_for(operator)
    failed = sagas["failed"]
    response, url, token = operate(client, failed, "retry", comment="provider back")
    assert response.status_code == 302 and response["Location"].endswith(f"/{failed.pk}/change/")
    assert SagaInstance.objects.get(pk=failed.pk).status == SagaStatus.STARTED
    row = OperatorAction.objects.get()
    assert (row.action, row.username, row.comment, row.status_before, row.status_after, row.outcome) == (
        "retry",
        "operator",
        "provider back",
        "FAILED",
        "STARTED",
        "done",
    )
    client.post(url, {"token": token, "comment": "provider back"})  # the form sent twice
    assert OperatorAction.objects.count() == 1
    page = client.get(f"/admin/saga/sagainstance/{failed.pk}/change/").content.decode()
    assert "operator operator</strong>: Retry" in page and "“provider back”" in page


def test_compensate_before_the_pivot_rolls_back_and_is_refused_after_it(operator, sagas):
    client = client_for(operator)
    response, _, _ = operate(client, sagas["waiting"], "compensate", comment="courier lost")
    assert response.status_code == 302
    assert SagaInstance.objects.get(pk=sagas["waiting"].pk).status == SagaStatus.COMPENSATING
    response, _, _ = operate(client, sagas["failed"], "compensate", comment="courier lost")
    assert SagaInstance.objects.get(pk=sagas["failed"].pk).status == SagaStatus.FAILED
    refused = OperatorAction.objects.get(saga=sagas["failed"])
    assert refused.outcome == "refused" and "pivot" in refused.detail
    messages = [str(m) for m in client.get(response["Location"]).context["messages"]]
    assert any("refused" in m and "pivot" in m for m in messages)


def test_rewind_offers_the_steps_reached_and_runs_again_from_one(operator, sagas):
    client = client_for(operator)
    url = f"/admin/saga/sagainstance/{sagas['waiting'].pk}/operate/rewind/"
    page = client.get(url).content.decode()
    reached = ["reserve_stock", "hold_funds", "authorize_payment", "await_acceptance"]
    assert re.findall(r'<option value="(\w+)"', page) == reached
    operate(client, sagas["waiting"], "rewind", step="hold_funds", comment="re-check funds")
    saga = SagaInstance.objects.get(pk=sagas["waiting"].pk)
    assert (saga.status, saga.current_step) == (SagaStatus.STARTED, "hold_funds")
    assert OperatorAction.objects.get().step == "hold_funds"


def test_resolve_needs_a_comment_then_marks_the_failed_saga_and_stops_its_actions(operator, sagas):
    client = client_for(operator)
    failed = sagas["failed"]
    response, url, token = operate(client, failed, "resolve")
    assert response.status_code == 200 and b"This field is required" in response.content
    assert not OperatorAction.objects.exists()
    client.post(url, {"token": token, "comment": "captured by hand at the provider"})
    saga = SagaInstance.objects.get(pk=failed.pk)
    assert saga.status == SagaStatus.FAILED and saga.resolved_at is not None
    response, _, _ = operate(client, failed, "resolve", comment="again")
    assert OperatorAction.objects.filter(saga=failed, outcome="nothing").count() == 1  # already resolved
    operate(client, failed, "retry", comment="try again")
    assert SagaInstance.objects.get(pk=failed.pk).status == SagaStatus.FAILED
    assert OperatorAction.objects.get(action="retry").outcome == "refused"
    page = client.get("/admin/saga/sagainstance/?resolved=yes").content.decode()
    assert "FAILED · resolved" in page


@pytest.mark.parametrize(
    ("action", "fields"), [("retry", {}), ("compensate", {}), ("rewind", {"step": "reserve_stock"})]
)
def test_every_action_form_needs_a_comment(operator, sagas, action, fields):
    client = client_for(operator)
    saga = sagas["waiting"]
    page = client.get(f"/admin/saga/sagainstance/{saga.pk}/operate/{action}/").content.decode()
    assert re.search(r'<textarea name="comment"[^>]* required', page)
    response, _, _ = operate(client, saga, action, comment=" ", **fields)
    assert response.status_code == 200 and b"This field is required" in response.content
    listing = client.post("/admin/saga/sagainstance/", {"action": f"{action}_selected", "_selected_action": [saga.pk]})
    token = confirm_token(listing.content.decode())
    bulk = {"action": f"{action}_selected", "_selected_action": [saga.pk], "confirm": "yes", "token": token}
    assert b"This field is required" in client.post("/admin/saga/sagainstance/", {**bulk, **fields}).content
    assert not OperatorAction.objects.exists()
    assert SagaInstance.objects.get(pk=saga.pk).status == saga.status


def test_list_actions_confirm_then_act_on_each_selected_saga(operator, sagas):
    client = client_for(operator)
    selected = [str(sagas["failed"].pk), str(sagas["completed"].pk)]
    page = client.post("/admin/saga/sagainstance/", {"action": "retry_selected", "_selected_action": selected})
    assert page.status_code == 200 and b"are you sure?" in page.content and b"will be refused" in page.content
    assert not OperatorAction.objects.exists()
    token = confirm_token(page.content.decode())
    response = client.post(
        "/admin/saga/sagainstance/",
        {"action": "retry_selected", "_selected_action": selected, "confirm": "yes", "token": token, "comment": "bulk"},
    )
    assert response.status_code == 302
    outcomes = dict(OperatorAction.objects.values_list("saga_id", "outcome"))
    assert outcomes == {sagas["failed"].pk: "done", sagas["completed"].pk: "refused"}
    assert SagaInstance.objects.get(pk=sagas["failed"].pk).status == SagaStatus.STARTED


def test_staff_without_the_change_permission_sees_no_action_and_can_run_none(viewer, sagas):
    client = client_for(viewer)
    failed = sagas["failed"]
    page = client.get(f"/admin/saga/sagainstance/{failed.pk}/change/")
    assert page.status_code == 200 and b"saga-actions" not in page.content and b"Retry" not in page.content
    listing = client.get("/admin/saga/sagainstance/").content
    assert b"retry_selected" not in listing and b'name="action"' not in listing
    for action in ("retry", "compensate", "rewind", "resolve"):
        url = f"/admin/saga/sagainstance/{failed.pk}/operate/{action}/"
        assert client.get(url).status_code == 403
        assert client.post(url, {"token": "t", "comment": "c", "step": "reserve_stock"}).status_code == 403
    client.post("/admin/saga/sagainstance/", {"action": "retry_selected", "_selected_action": [str(failed.pk)]})
    client.post(
        "/admin/saga/sagainstance/",
        {"action": "retry_selected", "_selected_action": [str(failed.pk)], "confirm": "yes", "token": "t"},
    )
    assert SagaInstance.objects.get(pk=failed.pk).status == SagaStatus.FAILED
    assert not OperatorAction.objects.exists()


def test_a_confirmed_order_links_back_to_its_saga(root, sagas):
    order = Order.objects.get(pk=sagas["completed"].aggregate_id)
    page = root.get(f"/admin/saga/sagainstance/{order.saga_id}/change/").content.decode()
    assert "COMPLETED" in page and 'id="saga-actions"' in page
    assert page.count('class="button saga-button-') == 4 and "Not now: a COMPLETED saga cannot be retried" in page
