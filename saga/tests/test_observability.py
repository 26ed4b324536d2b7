"""Logs and metrics of the engine in the minimal project (no shop): log records carry the generic
ids (saga_id, aggregate_id, step, attempt, request_id) with no logging configured, the request id
goes with the saga's messages, and /metrics counts the sagas."""

import logging
import uuid

from django.contrib.auth import get_user_model
from django.test import Client

from saga.core.ids import bound
from saga.core.logs import ids_of
from saga.messaging.relay import _headers
from saga.models import OutboxMessage

from .conftest import order_data


def test_the_engines_log_records_carry_the_sagas_ids(harness, toys, caplog):
    caplog.set_level(logging.INFO, logger="saga")
    order_id = uuid.uuid4()
    request_id = uuid.uuid4()
    with bound(request_id=request_id):
        saga_id = harness.start(data=order_data(order_id), aggregate_id=order_id)
    harness.run(saga_id)
    lines = [r for r in caplog.records if r.name.startswith("saga.orchestration")]
    assert [r.getMessage().split(":")[0] for r in lines] == [
        "saga toy_order v1 started",
        "action reserve_toys attempt 1",
        "action ship attempt 1",
        "saga toy_order COMPLETED",
    ]
    for record in lines:
        ids = ids_of(record)
        assert set(ids) == {"saga_id", "aggregate_id", "step", "attempt", "request_id"}, record.getMessage()
        assert (ids["saga_id"], ids["aggregate_id"], ids["request_id"]) == (
            str(saga_id),
            str(order_id),
            str(request_id),
        )
    assert [ids_of(r)["step"] for r in lines[1:3]] == ["reserve_toys", "ship"]
    for message in OutboxMessage.objects.filter(correlation_id=saga_id):
        assert dict(_headers(message))["request_id"] == str(request_id).encode()


def test_metrics_count_the_toy_sagas(harness, toys, db, settings):
    order_id = uuid.uuid4()
    harness.run(harness.start(data=order_data(order_id), aggregate_id=order_id))
    client = Client()
    assert client.get("/metrics").status_code == 401
    settings.SAGA_METRICS_TOKEN = "t0ken"
    text = client.get("/metrics", HTTP_AUTHORIZATION="Bearer t0ken").content.decode()
    assert 'saga_sagas_started_total{type="toy_order"} 1.0' in text
    assert 'saga_sagas_ended_total{status="COMPLETED",type="toy_order"} 1.0' in text
    assert 'saga_step_attempts_total{kind="action",outcome="SUCCEEDED",step="ship"} 1.0' in text
    viewer = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    assert viewer.has_perm("saga.view_sagainstance")
