"""The API against its own schema: schemathesis over /api/schema/, every operation, every check
(server errors, status codes, content types, response headers and schemas, negative data
rejected, positive data accepted, missing headers, unsupported methods, auth, use after free,
resource availability), all phases (examples, coverage, fuzzing, stateful sequences following
the schema's links and the ones schemathesis infers). Zero failures: the schema declares every
answer and constraint of the API, and the API takes what the schema allows.

The API runs as in production: gunicorn with DEBUG off, over real HTTP, against the test
database. `make test` runs a bounded number of examples with a fixed seed; `make schemathesis`
runs many more with a new seed (SCHEMATHESIS_MAX_EXAMPLES, SCHEMATHESIS_SEED). The run's JSON
report is written to reports/schemathesis.json."""

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework.authtoken.models import Token

from customers import services as customers
from inventory import services as inventory

ROOT = Path(__file__).resolve().parents[2]
MAX_EXAMPLES = int(os.environ.get("SCHEMATHESIS_MAX_EXAMPLES", "30"))
SEED = os.environ.get("SCHEMATHESIS_SEED", "20261128")
REPORT = ROOT / "reports" / "schemathesis.json"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db["PASSWORD"] else ""
    return f"postgres://{db['USER']}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def token(transactional_db) -> str:
    user = get_user_model().objects.create_superuser("fuzz", "fuzz@example.com", "pw")
    # Something to read, update and delete besides what schemathesis creates.
    customers.customer_create(name="Ada", email="ada@example.com", balance=Decimal("500.00"))
    customers.customer_create(name="Bob", balance=Decimal("0.00"), blocked=True)
    inventory.product_create(sku="WIDGET", name="Widget", price=Decimal("25.00"), stock=10)
    return Token.objects.create(user=user).key


@pytest.fixture
def api_url(token) -> Iterator[str]:
    """gunicorn serving the shop on a free port of 127.0.0.1, against the test database, and a Celery
    worker of its own queue (health counts one)."""
    port = free_port()
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "DJANGO_DEBUG": "0",
        # No relay runs here: the outbox lags, and /api/health would say so with a 503.
        "OUTBOX_LAG_DEGRADED_SECONDS": "1000000",
        # Orders placed here ring a queue only this worker listens to.
        "SHOP_CELERY_QUEUE": f"schemathesis-{uuid.uuid4().hex[:8]}",
        "KAFKA_BOOTSTRAP_SERVERS": settings.KAFKA_BOOTSTRAP_SERVERS,
    }
    (ROOT / ".devstack").mkdir(exist_ok=True)
    log = open(ROOT / ".devstack" / f"schemathesis-gunicorn-{port}.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("gunicorn")),
            "shop.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "2",
            "--timeout",
            "60",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "shop", "worker", "--concurrency", "1", "--loglevel", "WARNING"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/health", timeout=5)
                break
            except OSError:
                assert server.poll() is None, Path(log.name).read_text()[-2000:]
                assert worker.poll() is None, Path(log.name).read_text()[-2000:]
                assert time.monotonic() < deadline, "gunicorn did not answer, or health is not ok"
                time.sleep(0.2)
        yield url
    finally:
        for process in (server, worker):
            process.terminate()
            process.wait(timeout=30)
        log.close()


def test_the_api_keeps_every_promise_of_its_schema(api_url, token, tmp_path, capsys):
    REPORT.parent.mkdir(exist_ok=True)
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "run",
        f"{api_url}/api/schema/",
        "--header",
        f"Authorization: Token {token}",
        "--checks",
        "all",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--seed",
        SEED,
        # One worker: several threads of hypothesis trip over a CPython 3.11 ast.parse race.
        "--workers",
        "1",
        "--generation-database",
        "none",
        "--no-color",
        "--report",
        "json",
        "--report-json-path",
        str(REPORT),
    ]
    # cwd: schemathesis keeps a cache in ./.schemathesis
    run = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=7200, check=False)
    report = json.loads(REPORT.read_text())
    cases, operations = report["test_cases"], report["operations"]
    phases = ", ".join(f"{name} {phase['status']}" for name, phase in report["phases"].items())
    summary = (
        f"schemathesis {report['schemathesis_version']}, seed {report['seed']}, {MAX_EXAMPLES} examples: "
        f"{operations['tested']}/{operations['total']} operations, {cases['generated']} cases generated, "
        f"{cases['unique_failures']} failures, {len(report['errors'])} errors, "
        f"phases: {phases}, "
        f"{report['running_time']:.0f} s"
    )
    with capsys.disabled():
        sys.stdout.write(f"\n{summary}\n")
    assert run.returncode == 0, f"{summary}\n{run.stdout[-20000:]}\n{run.stderr[-3000:]}"
    assert operations["tested"] == operations["total"] == operations["selected"] > 20
    assert cases["unique_failures"] == 0 and not report["errors"]
    assert all(phase["status"] == "success" for phase in report["phases"].values()), report["phases"]
