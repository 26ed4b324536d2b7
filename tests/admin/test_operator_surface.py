"""What the operator reads in the admin agrees with the records: refusals say why as the API
does, counts and errors match the saga's attempts, keys are shown as the client sent them, and
only what may still be done is offered."""

import re
import uuid

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from customers.models import Customer
from inventory.models import Product
from saga import services
from saga.models import OperatorAction, SagaInstance, SagaStatus, SagaStep

from .conftest import client_for


@pytest.fixture
def root(db):
    return client_for(get_user_model().objects.create_superuser("root", "root@example.com", "pw"))


@pytest.mark.parametrize("model", [Customer, Product])
def test_deleting_a_row_orders_still_reference_is_refused_with_the_apis_reason(root, sagas, model):
    row = model.objects.get()  # the `shop` fixture's customer and product, both in placed orders
    reason = f"{model._meta.verbose_name} {row.pk} is referenced by orders"  # what the API answers (409)
    url = f"/admin/{model._meta.app_label}/{model._meta.model_name}/"
    page = root.get(f"{url}{row.pk}/delete/")
    assert page.status_code == 200 and reason in page.content.decode()
    assert b"permission to delete" not in page.content
    listed = root.post(url, {"action": "delete_selected", "_selected_action": [row.pk]})
    assert reason in listed.content.decode() and b"permission to delete" not in listed.content
    root.post(f"{url}{row.pk}/delete/", {"post": "yes"})
    root.post(url, {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"})
    assert model.objects.filter(pk=row.pk).exists()


def facts(page: str) -> dict[str, str]:
    """The saga page's facts, label to text, tags stripped."""
    rows = re.findall(r"<th[^>]*>(.*?)</th>\s*<td[^>]*>(.*?)</td>", page, re.S)
    return {re.sub(r"<[^>]+>", "", label).strip(): re.sub(r"<[^>]+>", "", text).strip() for label, text in rows}


def test_a_waiting_saga_counts_the_attempt_its_timeline_shows(root, sagas):
    waiting = sagas["waiting"]
    running = waiting.steps.get(status=SagaStep.Status.RUNNING)
    assert (running.name, running.attempt) == ("await_acceptance", 1)
    assert waiting.attempts == running.attempt
    page = root.get(f"/admin/saga/sagainstance/{waiting.pk}/change/").content.decode()
    assert facts(page)["attempts at it"] == "1"


def test_a_saga_that_moved_on_after_a_retry_shows_no_error(root, superuser, sagas, harness):
    failed = sagas["failed"]
    assert "its worker died" in failed.error
    services.saga_retry(saga_id=failed.pk, by=superuser, comment="provider back", runtime=harness.runtime)
    assert harness.run(failed.pk).status == SagaStatus.COMPLETED
    assert SagaInstance.objects.get(pk=failed.pk).error == ""
    page = root.get(f"/admin/saga/sagainstance/{failed.pk}/change/").content.decode()
    assert "last error" not in facts(page)
    assert "its worker died" in page  # the failed attempts keep theirs in the timeline
    api = APIClient()
    api.force_authenticate(superuser)
    assert api.get(f"/api/sagas/{failed.pk}").json()["error"] == ""


def test_the_order_page_shows_the_idempotency_key_as_the_client_sent_it(root, superuser, shop):
    customer, product = shop
    api = APIClient()
    api.force_authenticate(superuser)
    body = {"customer_id": str(customer.pk), "items": [{"sku": product.sku, "quantity": 1}]}
    order = api.post("/api/orders", body, format="json", HTTP_IDEMPOTENCY_KEY="grace-1").json()
    page = root.get(f"/admin/orders/order/{order['id']}/change/").content.decode()
    shown = re.search(r"idempotency key.*?<div class=\"readonly\">(.*?)</div>", page, re.S | re.I)
    assert shown is not None and shown.group(1).strip() == "grace-1"


def test_a_dead_letter_no_longer_open_offers_and_takes_no_action(root, superuser, dead_letter):
    services.dead_letter_discard(dead_letter_id=dead_letter.pk, by=superuser, comment="garbage")
    page = root.get(f"/admin/saga/deadletter/{dead_letter.pk}/change/").content.decode()
    assert "Replay…" not in page and "Discard…" not in page
    refusal = f"dead letter {dead_letter.pk} was discarded already: only an open one is replayed or discarded"
    for action in ("replay", "discard"):
        url = f"/admin/saga/deadletter/{dead_letter.pk}/operate/{action}/"
        for response in (
            root.get(url, follow=True),
            root.post(url, {"token": uuid.uuid4().hex, "comment": "again"}, follow=True),
        ):
            assert [str(message) for message in response.context["messages"]] == [refusal]
    listed = "/admin/saga/deadletter/"
    chosen = {"action": "replay_selected", "_selected_action": [dead_letter.pk], "confirm": "yes"}
    response = root.post(listed, {**chosen, "token": uuid.uuid4().hex}, follow=True)
    assert [str(message) for message in response.context["messages"]] == [refusal]
    assert OperatorAction.objects.filter(dead_letter=dead_letter).count() == 1  # the discard alone


def test_an_open_dead_letter_offers_replay_and_discard(root, dead_letter):
    page = root.get(f"/admin/saga/deadletter/{dead_letter.pk}/change/").content.decode()
    assert "Replay…" in page and "Discard…" in page
