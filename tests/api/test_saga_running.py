"""An operator sees the step a saga is running, its attempt and since when, in GET /api/sagas/{id}
and on the admin's saga page, whichever path runs it: the one-transaction path (nothing of it is
committed until it ends) and the careful one (its attempt is committed as RUNNING first)."""

import socket
import threading
import time
import uuid
from collections.abc import Callable

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.test import Client
from rest_framework.test import APIClient

from orders.saga import PLACE_ORDER
from saga.models import SagaInstance, SagaStatus
from saga.orchestration import running
from saga.selectors import saga_is_stuck, saga_running, saga_stuck_q
from saga.testing import stepping
from saga.testing.harness import SagaHarness
from tests.conftest import wait_for


@pytest.fixture
def harness():
    return SagaHarness(PLACE_ORDER)


@pytest.fixture(autouse=True)
def markers_cache_answers(monkeypatch):
    monkeypatch.setattr(running, "_quiet_until", 0.0)  # whatever an earlier test did to the cache


def place(api, customer) -> dict:
    """A credit-only order: its saga passes over reserve_stock and runs hold_funds first."""
    return api.post("/api/orders", {"customer_id": str(customer.pk), "amount": "10.00"}, format="json").json()


class LookWhileStepRuns:
    """Faults that, while `step` runs in its saga's transaction, look at the saga as another
    process would (another thread: another database connection), and let the step go on. A look
    waits for what it looks for: a marker is written once the attempt has run for a moment."""

    def __init__(self, step: str, look: Callable[[], object]):
        self.step, self.look = step, look
        self.seen: list[object] = []

    def before(self, step, kind, ctx):
        if (step, kind) == (self.step, "action") and not self.seen:
            thread = threading.Thread(target=self._look)
            thread.start()
            thread.join(timeout=30)
        return None

    def _look(self) -> None:
        try:
            self.seen.append(self.look())
        finally:
            connection.close()


def shown_running(api, saga_id) -> Callable[[], dict]:
    """A look at the saga through the API, once it shows an attempt running."""

    def saga_with_running() -> dict | None:
        saga = api.get(f"/api/sagas/{saga_id}").json()
        return saga if saga["running"] else None

    return lambda: wait_for(saga_with_running, timeout=10, what="the API to show the running attempt")


def test_the_api_shows_the_step_running_in_its_saga_transaction(api, customer, harness, transactional_db):
    order = place(api, customer)
    saga_url = f"/api/sagas/{order['saga_id']}"
    looking = LookWhileStepRuns("hold_funds", shown_running(api, order["saga_id"]))
    harness.runtime.faults = looking
    before = harness.clock.now()
    harness.run(uuid.UUID(order["saga_id"]))

    [saga] = looking.seen
    assert saga["status"] == "STARTED"
    assert saga["current_step"] == "hold_funds"  # the row still says reserve_stock
    assert saga["attempts"] == 1
    assert saga["running"] == {
        "step": "hold_funds",
        "kind": "action",
        "attempt": 1,
        "since": saga["running"]["since"],
        "timeout": 30.0,
        "stuck": False,
    }
    assert saga["running"]["since"] >= before.isoformat().replace("+00:00", "Z")
    done = api.get(saga_url).json()
    assert done["status"] == "COMPLETED" and done["running"] is None


def test_the_marker_is_in_the_shared_redis_for_the_web_of_another_process(api, customer, harness, transactional_db):
    order = place(api, customer)
    assert settings.CACHES[settings.SAGA_RUNNING_CACHE]["LOCATION"] == settings.REDIS_URL
    shared = redis.Redis.from_url(settings.REDIS_URL)
    marked = lambda: shared.keys(f"*saga:running:{order['saga_id']}")  # noqa: E731
    looking = LookWhileStepRuns("hold_funds", lambda: wait_for(marked, timeout=10, what="the marker"))
    harness.runtime.faults = looking
    harness.run(uuid.UUID(order["saga_id"]))
    assert len(looking.seen[0]) == 1


def test_a_step_running_past_its_timeout_is_flagged_stuck(api, customer, harness, transactional_db):
    order = place(api, customer)
    looking = LookWhileStepRuns("hold_funds", shown_running(api, order["saga_id"]))
    harness.runtime.faults = looking
    harness.clock.advance(-31)  # the step started 31 s ago: its timeout is 30 s
    harness.run(uuid.UUID(order["saga_id"]))
    assert looking.seen[0]["running"]["stuck"] is True


def test_the_careful_path_shows_its_claimed_attempt_the_same_way(api, customer, harness):
    order = place(api, customer)
    saga_id = uuid.UUID(order["saga_id"])
    harness.clock.advance(-31)
    claimed = stepping.claim(saga_id, harness.runtime)
    assert isinstance(claimed, stepping.Claim)
    saga = api.get(f"/api/sagas/{saga_id}").json()
    assert saga["current_step"] == "hold_funds"
    assert saga["attempts"] == 1
    running_now = dict(saga["running"], since=None)
    assert running_now == {
        "step": "hold_funds",
        "kind": "action",
        "attempt": 1,
        "since": None,
        "timeout": 30.0,
        "stuck": True,
    }
    stepping.run(saga_id, claimed, harness.runtime)
    assert api.get(f"/api/sagas/{saga_id}").json()["running"] is None


def test_the_saga_page_shows_the_running_step_its_attempt_and_since_when(
    api, customer, superuser, harness, transactional_db
):
    order = place(api, customer)
    admin = Client()
    admin.force_login(superuser)
    page = f"/admin/saga/sagainstance/{order['saga_id']}/change/"

    def shown() -> str | None:
        html = admin.get(page).content.decode()
        return html if "running attempt" in html else None

    looking = LookWhileStepRuns("hold_funds", lambda: wait_for(shown, timeout=10, what="the running fact"))
    harness.runtime.faults = looking
    harness.clock.advance(-31)
    harness.run(uuid.UUID(order["saga_id"]))
    [html] = looking.seen
    assert "running attempt 1" in html
    assert "⚠ running past its timeout (30 s)" in html
    assert html.count("hold_funds") >= 2  # the current step, and the timeline's running row


class BlackHole:
    """A port that takes connections and never answers: a frozen Redis."""

    def __enter__(self) -> str:
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(64)
        return f"redis://127.0.0.1:{self.socket.getsockname()[1]}/0"

    def __exit__(self, *exc_info: object) -> None:
        self.socket.close()


class SlowOnce:
    """Faults: `step`'s first attempt takes `seconds`, long enough to be marked."""

    def __init__(self, step: str, seconds: float):
        self.step, self.seconds, self.slept = step, seconds, False

    def before(self, step, kind, ctx):
        if (step, kind) == (self.step, "action") and not self.slept:
            self.slept = True
            time.sleep(self.seconds)
        return None


def test_a_frozen_markers_cache_neither_fails_nor_slows_the_steps(api, customer, harness, settings, caplog):
    orders = [place(api, customer) for _ in range(3)]
    harness.runtime.faults = SlowOnce("hold_funds", 1.0)
    with BlackHole() as frozen:
        settings.CACHES = {
            **settings.CACHES,
            settings.SAGA_RUNNING_CACHE: {**settings.CACHES[settings.SAGA_RUNNING_CACHE], "LOCATION": frozen},
        }
        started = time.monotonic()
        sagas = [harness.run(uuid.UUID(order["saga_id"])) for order in orders]
        elapsed = time.monotonic() - started
        shown = api.get(f"/api/sagas/{orders[0]['saga_id']}")
    assert [saga.status for saga in sagas] == [SagaStatus.COMPLETED] * 3
    assert elapsed < 2.5  # the slow step's second, and no wait for the cache
    assert shown.status_code == 200 and shown.json()["running"] is None
    warnings = [r for r in caplog.records if "running-step markers" in r.getMessage()]
    assert len(warnings) == 1


def test_the_schema_documents_the_running_step(api):
    schema = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json").json()
    saga = schema["components"]["schemas"]["OrderSagaOutput"]
    assert "running" in saga["properties"]
    running_schema = schema["components"]["schemas"]["RunningOutput"]
    assert set(running_schema["properties"]) == {"step", "kind", "attempt", "since", "timeout", "stuck"}


def _counted_stuck(saga_id) -> tuple[bool, bool]:
    """Is the saga among the stuck ones (the dashboard's, /metrics', saga_status'), and stuck alone?"""
    marked = lambda: saga_running(saga=SagaInstance.objects.get(pk=saga_id))  # noqa: E731
    wait_for(marked, timeout=10, what="the marker")
    saga = SagaInstance.objects.get(pk=saga_id)
    return SagaInstance.objects.filter(saga_stuck_q(), pk=saga_id).exists(), saga_is_stuck(saga)


@pytest.mark.parametrize(("started_ago", "stuck"), [(0, False), (31, True)])
def test_a_saga_running_a_step_is_counted_stuck_only_past_the_steps_timeout(
    api, customer, harness, settings, transactional_db, started_ago, stuck
):
    settings.SAGA_STALL_AFTER = 0.0  # unchanged for longer than that: stuck, unless running in time
    order = place(api, customer)
    looking = LookWhileStepRuns("hold_funds", lambda: _counted_stuck(order["saga_id"]))
    harness.runtime.faults = looking
    harness.clock.advance(-started_ago)
    harness.run(uuid.UUID(order["saga_id"]))
    assert looking.seen == [(stuck, stuck)]
