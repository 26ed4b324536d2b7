"""Counters kept in other processes (the relay's, the consumer's) are in the web's /metrics scrape:
prometheus-client's multiprocess mode over the folder devstack names in PROMETHEUS_MULTIPROC_DIR."""

import pytest
from rest_framework.test import APIClient

from saga.messaging import publish, topic_for
from saga.models import OutboxMessage
from tests.observability.test_metrics import sample, scrape

from .conftest import wait_until

pytestmark = pytest.mark.worker


def test_the_relay_process_counts_into_the_web_scrape(start_command, superuser):
    operator = APIClient()
    operator.force_login(superuser)
    topic = topic_for("order_events")  # this test's own topic (app_env)
    assert sample(scrape(operator), "saga_relay_messages_sent_total", topic=topic) == 0
    for n in range(3):
        publish(type="order.created", key=f"order-{n}", payload={"order_id": f"order-{n}"})
    start_command("relay_outbox", "--poll-interval", "0.2")
    wait_until(lambda: not OutboxMessage.objects.filter(sent_at__isnull=True).exists(), what="the relay to send")
    counted = wait_until(
        lambda: sample(scrape(operator), "saga_relay_messages_sent_total", topic=topic),
        timeout=10,
        what="the relay's counter in the scrape",
    )
    assert counted == 3
