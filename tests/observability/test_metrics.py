"""Item 10 of issue 13: /metrics, read by a permitted user or Prometheus' token, shows the
counters moving after a few sagas."""

import re
import uuid

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from orders.saga import PLACE_ORDER
from saga.messaging.inbox import consume
from saga.testing.harness import SagaHarness
from tests import compose


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition (0 when absent)."""
    for line in text.splitlines():
        match = re.fullmatch(r"([a-z_:]+)(?:\{(.*)\})? (\S+)", line)
        if not match or match[1] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match[2] or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match[3])
    return 0.0


def scrape(client) -> str:
    response = client.get("/metrics")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    return response.content.decode()


def test_the_counters_move_after_a_few_sagas(api, superuser, customer, product):
    harness = SagaHarness(PLACE_ORDER)
    operator = APIClient()
    operator.force_login(superuser)  # a Django session: /metrics is no DRF view
    before = scrape(operator)
    good = {"customer_id": str(customer.pk), "items": [{"product_id": str(product.pk), "quantity": 1}]}
    too_much = {"customer_id": str(customer.pk), "amount": "100000.00"}
    for body in (good, good, too_much):
        saga_id = api.post("/api/orders", body, format="json").json()["saga_id"]
        harness.run(uuid.UUID(saga_id))
    consume("order_events", b"not json", partition=0, offset=1)  # one dead letter
    after = scrape(operator)

    def moved(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert moved("saga_sagas_started_total", type="place_order") == 3
    assert moved("saga_sagas_ended_total", type="place_order", status="COMPLETED") == 2
    assert moved("saga_sagas_ended_total", type="place_order", status="COMPENSATED") == 1
    assert moved("saga_step_attempts_total", step="reserve_stock", kind="action", outcome="SUCCEEDED") == 2
    assert moved("saga_step_attempts_total", step="reserve_stock", kind="action", outcome="SKIPPED") == 1
    assert moved("saga_step_attempts_total", step="hold_funds", kind="action", outcome="REFUSED") == 1
    assert moved("saga_step_duration_seconds_count", step="confirm_order", kind="action", outcome="SUCCEEDED") == 2
    assert (
        moved("saga_step_duration_seconds_bucket", step="confirm_order", kind="action", outcome="SUCCEEDED", le="+Inf")
        == 2
    )
    assert moved("saga_consumer_messages_total", topic="order_events", outcome="parked") == 1
    assert moved("saga_dead_letters", state="open") == 1
    assert sample(after, "saga_outbox_unsent") >= 3  # no relay runs here: the events wait
    assert sample(after, "saga_outbox_lag_seconds") >= 0
    for name in (
        "saga_sagas_stuck",
        "saga_sagas_active",
        "saga_relay_messages_sent_total",
        "saga_sagas_needing_operator",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in after


@pytest.mark.django_db
def test_metrics_need_the_saga_view_permission_or_the_token(settings):
    anonymous = APIClient()
    assert anonymous.get("/metrics").status_code == 401
    user = get_user_model().objects.create_user("watcher", password="pw")
    client = APIClient()
    client.force_login(user)
    assert client.get("/metrics").status_code == 403  # known, but not allowed
    user.user_permissions.add(Permission.objects.get(codename="view_sagainstance"))
    assert client.get("/metrics").status_code == 200
    settings.SAGA_METRICS_TOKEN = "s3cret-token"
    assert anonymous.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert anonymous.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 200


def with_api_token(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.mark.django_db
def test_metrics_take_the_api_token_of_a_user_with_the_saga_view_permission():
    users = get_user_model().objects
    admin = users.create_superuser("root", "root@example.com", "pw")
    watcher = users.create_user("watcher", password="pw")
    watcher.user_permissions.add(Permission.objects.get(codename="view_sagainstance"))
    stranger = users.create_user("stranger", password="pw")
    for allowed in (admin, watcher):
        response = with_api_token(allowed).get("/metrics")
        assert response.status_code == 200, response.content
        assert b"saga_sagas_stuck" in response.content
    refused = with_api_token(stranger).get("/metrics")
    assert refused.status_code == 403
    assert refused.json()["code"] == "permission_denied"
    assert APIClient().get("/metrics", HTTP_AUTHORIZATION="Token not-a-token").status_code == 401


def test_the_grafana_dashboard_asks_only_for_metrics_the_shop_exposes(superuser):
    import json
    from pathlib import Path

    operator = APIClient()
    operator.force_login(superuser)
    exposed = set(re.findall(r"^# TYPE (\w+) (\w+)", scrape(operator), re.MULTILINE))
    names = {name for name, _ in exposed}
    names |= {f"{n}_total" for n, kind in exposed if kind == "counter"}
    names |= {f"{n}_{part}" for n, kind in exposed if kind == "histogram" for part in ("bucket", "sum", "count")}
    dashboard = json.loads((Path(__file__).parents[2] / "ops" / "grafana-dashboard.json").read_text())
    asked = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(saga_\w+)", target["expr"])
    }
    assert asked and asked <= names, asked - names


@pytest.mark.parametrize("topology", compose.TOPOLOGIES)
def test_every_process_of_the_compose_stack_counts_into_one_shared_folder(topology):
    """docker-compose.yml: web, worker, beat, relay and consumer (and in the services topology the
    contexts' participants and relays) share PROMETHEUS_MULTIPROC_DIR (a volume), which the image
    creates for its user, so the web's scrape shows every process's counts."""
    services = compose.app_services(topology)
    assert {"web", "worker", "beat", "relay", "consumer"} <= set(services)
    folders = set()
    for name in services:
        folder = services[name]["environment"]["PROMETHEUS_MULTIPROC_DIR"]
        volume = next(v.split(":")[0] for v in services[name]["volumes"] if v.split(":")[1] == folder)
        folders.add((folder, volume))
    assert len(folders) == 1, folders
    ((folder, _),) = folders
    assert f"-o shop -g shop -m 700 /var/lib/shop {folder}" in (compose.ROOT / "Dockerfile").read_text()


def test_a_process_that_exits_leaves_its_counts_and_drops_its_live_gauges():
    """gunicorn's child_exit and Celery's pool call process_exited(pid): the live gauges of that
    process go (prometheus-client's mark_process_dead), its counters stay."""
    import os
    from pathlib import Path

    from saga.core.counters import process_exited, process_name

    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    gauge, counter = folder / f"gauge_livesum_{process_name(99999)}.db", folder / f"counter_{process_name(99999)}.db"
    gauge.write_bytes(b"")
    counter.write_bytes(b"")
    try:
        process_exited(99999)
        assert not gauge.exists() and counter.exists()
    finally:
        gauge.unlink(missing_ok=True)
        counter.unlink(missing_ok=True)
