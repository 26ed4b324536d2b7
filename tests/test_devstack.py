"""What `make run` (devstack) says and sets up besides the services: the scrape command, the folder
of the processes' counters, and "ready" only once the shop's health is all ok."""

import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.conftest import wait_for
from tools.devstack import stack

DEGRADED = {"status": "degraded", "database": "ok", "broker": "ok", "kafka": "ok", "worker": "error: no live worker"}
HEALTHY = {"status": "ok", "database": "ok", "broker": "ok", "kafka": "ok", "worker": "ok", "outbox_lag_seconds": 0.0}


class FakeShop(ThreadingHTTPServer):
    """Answers GET /api/health with `answer` (status, body), counting the questions."""

    def __init__(self) -> None:
        self.answer: tuple[int, dict] = (503, DEGRADED)
        self.asked = 0
        super().__init__(("127.0.0.1", 0), HealthHandler)

    @property
    def site(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class HealthHandler(BaseHTTPRequestHandler):
    server: FakeShop

    def do_GET(self) -> None:
        self.server.asked += 1
        status, body = self.server.answer
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body).encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def shop():
    server = FakeShop()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def test_ready_is_said_only_once_health_is_all_ok(shop, capsys):
    stop = threading.Event()
    announcer = threading.Thread(target=stack.announce_readiness, args=(shop.site, stop, 60))
    announcer.start()
    wait_for(lambda: shop.asked >= 3, timeout=10, what="a few polls of health")
    assert "ready" not in capsys.readouterr().err
    shop.answer = (200, HEALTHY)
    announcer.join(timeout=10)
    assert not announcer.is_alive()
    said = capsys.readouterr().err
    assert f"devstack: ready: {shop.site}/ (database, broker, kafka, worker: ok)" in said


def test_what_is_not_ready_is_named_at_the_deadline(shop, capsys):
    stack.announce_readiness(shop.site, threading.Event(), timeout=0.5)
    assert "devstack: not ready after 0 s: worker: error: no live worker" in capsys.readouterr().err


def test_a_stopped_shop_is_not_announced(shop, capsys):
    stop = threading.Event()
    stop.set()  # Ctrl-C, or honcho exited
    stack.announce_readiness(shop.site, stop, timeout=60)
    assert capsys.readouterr().err == ""


def test_the_banner_says_how_to_scrape_the_metrics_with_the_demo_token():
    banner = stack.banner(8000, "demo-token-123")
    assert 'curl -H "Authorization: Token demo-token-123" http://127.0.0.1:8000/metrics' in banner


def test_the_counters_folder_is_emptied_at_start(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    (tmp_path / "metrics").mkdir()
    (tmp_path / "metrics" / "counter_host-123.db").write_bytes(b"an earlier run's counts")
    folder = stack.counters_dir(tmp_path)
    assert folder == str(tmp_path / "metrics")
    assert list((tmp_path / "metrics").iterdir()) == []
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "/elsewhere")
    assert stack.counters_dir(tmp_path) == "/elsewhere"  # given: used as it is, never emptied


def test_exec_gives_its_command_the_counters_folder():
    # This very test runs under `devstack exec` (make test): the variable names a folder that exists.
    assert os.path.isdir(os.environ["PROMETHEUS_MULTIPROC_DIR"])


def test_the_services_procfile_adds_each_participant_context_in_a_process_of_its_own(tmp_path):
    procfile = stack.services_procfile(tmp_path).read_text()
    assert procfile.startswith(stack.PROCFILE.read_text())  # orders' processes, as in the monolith
    for context in ("customers", "inventory", "payments"):
        assert f"{context}: SHOP_CONTEXT={context} python manage.py run_participant {context}\n" in procfile
        assert f"{context}_relay: SHOP_CONTEXT={context} python manage.py relay_outbox\n" in procfile


def test_exec_gives_its_command_a_database_per_context_in_its_cluster():
    # So that one `make test` runs the suite in both topologies.
    if "ORDERS_DATABASE_URL" not in os.environ:
        pytest.skip("DATABASE_URL was given: devstack started no PostgreSQL")
    server = os.environ["DATABASE_URL"].rsplit("/", 1)[0]
    assert {name: os.environ[f"{name.upper()}_DATABASE_URL"] for name in ("orders", "customers")} == {
        "orders": os.environ["DATABASE_URL"],
        "customers": f"{server}/shop_customers",
    }
