"""Dead letters replayed through the inbox (once) or discarded with a comment; the dashboard on the
admin index; Swagger UI and ReDoc served without the internet."""

import json
import re
import uuid

import pytest
from django.test import Client

from saga import services
from saga.messaging.inbox import consume
from saga.models import DeadLetter, InboxMessage, OperatorAction, SagaInstance, SagaStatus

from .conftest import client_for, user_with


def accepted(order_id, message_id=None) -> bytes:
    envelope = {"id": str(message_id or uuid.uuid4()), "type": "fulfillment.accepted", "payload": {"order_id": ""}}
    envelope["payload"]["order_id"] = str(order_id)
    return json.dumps(envelope).encode()


def park(value: bytes, error: str = "no handler then") -> DeadLetter:
    return DeadLetter.objects.create(
        topic="fulfillment_events", partition=0, offset=7, value=value.decode(), error=error
    )


def operate(client, letter, action: str, **fields):
    url = f"/admin/saga/deadletter/{letter.pk}/operate/{action}/"
    page = client.get(url).content.decode()
    token = re.search(r'name="token" value="([0-9a-f]+)"', page).group(1)
    return client.post(url, {"token": token, **fields}), url, token


def test_a_replayed_dead_letter_is_consumed_through_the_inbox_once(operator, sagas):
    client = client_for(operator)
    waiting = sagas["waiting"]
    letter = park(accepted(waiting.aggregate_id))
    response, url, token = operate(client, letter, "replay", comment="handler deployed")
    assert response.status_code == 302
    letter.refresh_from_db()
    assert letter.resolution == "replayed" and letter.resolved_at is not None
    assert InboxMessage.objects.filter(id=json.loads(letter.value)["id"]).count() == 1
    assert SagaInstance.objects.get(pk=waiting.pk).current_step == "confirm_order"  # its wait ended
    client.post(url, {"token": token, "comment": "handler deployed"})  # the form sent twice
    assert client.get(url)["Location"].endswith(f"/{letter.pk}/change/")  # no longer open: no form to replay it
    assert list(OperatorAction.objects.values_list("outcome", flat=True)) == ["done"]
    assert InboxMessage.objects.count() == 1


def test_a_dead_letter_whose_id_was_consumed_is_not_acted_on_again(sagas):
    message_id = uuid.uuid4()
    assert consume("fulfillment_events", accepted(sagas["waiting"].aggregate_id, message_id)) == "processed"
    letter = park(accepted(sagas["waiting"].aggregate_id, message_id))
    record = services.dead_letter_replay(dead_letter_id=letter.pk)
    assert record.outcome == "done" and "not acted on again" in record.detail


def test_a_dead_letter_still_unusable_stays_open_with_its_new_error(operator, dead_letter):
    client = client_for(operator)
    operate(client, dead_letter, "replay")
    dead_letter.refresh_from_db()
    assert dead_letter.resolution == "" and "not a message envelope" in dead_letter.error
    assert OperatorAction.objects.get().outcome == "failed"
    assert DeadLetter.objects.count() == 1  # not parked a second time


def test_discarding_needs_a_comment(operator, dead_letter):
    client = client_for(operator)
    response, url, token = operate(client, dead_letter, "discard")
    assert response.status_code == 200 and b"This field is required" in response.content
    client.post(url, {"token": token, "comment": "garbage from a test producer"})
    dead_letter.refresh_from_db()
    assert dead_letter.resolution == "discarded"
    row = OperatorAction.objects.get()
    assert (row.action, row.username, row.comment) == (
        "discard_dead_letter",
        "operator",
        "garbage from a test producer",
    )
    page = client.get(f"/admin/saga/deadletter/{dead_letter.pk}/change/").content.decode()
    assert "garbage from a test producer" in page and "discarded" in page


def test_dead_letters_are_operated_only_with_their_permission(viewer, dead_letter):
    client = client_for(viewer)
    page = client.get(f"/admin/saga/deadletter/{dead_letter.pk}/change/")
    assert page.status_code == 200 and b"/operate/replay/" not in page.content
    for action in ("replay", "discard"):
        url = f"/admin/saga/deadletter/{dead_letter.pk}/operate/{action}/"
        assert client.post(url, {"token": "t", "comment": "c"}).status_code == 403
    with pytest.raises(services.PermissionDenied):
        services.dead_letter_discard(dead_letter_id=dead_letter.pk, comment="c", by=viewer)
    dead_letter.refresh_from_db()
    assert dead_letter.resolution == "" and not OperatorAction.objects.exists()


def test_the_dashboard_counts_and_links_to_the_filtered_lists(operator, sagas, dead_letter):
    page = client_for(operator).get("/admin/").content.decode()
    dashboard = page[page.index('id="saga-dashboard"') : page.index('id="content-main"')]
    assert "1 failed saga waiting for an operator, 1 stuck, 1 open dead letter" in dashboard
    assert "/admin/saga/sagainstance/?status__exact=FAILED&amp;resolved=no" in dashboard
    assert "/admin/saga/sagainstance/?stuck=yes" in dashboard
    assert "/admin/saga/sagainstance/?status__exact=COMPLETED&amp;started=24h" in dashboard
    assert "/admin/saga/outboxmessage/?sent_at__isempty=1" in dashboard
    assert "/admin/saga/deadletter/?state=open" in dashboard
    hour = re.search(r">COMPLETED</span></td>\s*<td class=\"num\">(.*?)</td>", dashboard).group(1)
    assert "quiet" in hour  # the completed saga started 95 minutes ago: none in the last hour
    for link in re.findall(r'href="(/admin/saga/[^"]+)"', dashboard):
        assert client_for(operator).get(link.replace("&amp;", "&")).status_code == 200


def test_the_dashboard_is_quiet_when_all_is_well_and_hidden_from_those_who_may_not_see_sagas(db):
    all_quiet = client_for(user_with("watcher", "view_sagainstance", "view_deadletter")).get("/admin/").content
    assert b"All quiet" in all_quiet
    assert b'id="saga-dashboard"' not in client_for(user_with("clerk", "view_customer")).get("/admin/").content


def test_retrying_from_the_admin_is_what_the_service_does(operator, sagas):
    failed = sagas["failed"]
    record = services.saga_retry(saga_id=failed.pk, by=operator, comment="x")
    assert (record.outcome, SagaInstance.objects.get(pk=failed.pk).status) == ("done", SagaStatus.STARTED)
    again = services.saga_retry(saga_id=failed.pk, by=operator, comment="y")
    assert again.outcome == "nothing" and "nudged" in again.detail


@pytest.mark.parametrize(("page", "asset"), [("/api/docs/", "swagger-ui-dist"), ("/api/redoc/", "redoc")])
def test_the_api_docs_load_nothing_from_the_internet(db, page, asset):
    html = Client().get(page).content.decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(not s.startswith(("http:", "https:", "//")) for s in sources), sources
    local = [s for s in sources if asset in s]
    assert local, sources
    for source in local:
        assert Client().get(source).status_code == 200, source
