"""The docker compose stack in both topologies: `docker compose up --build` is the monolith, and
docker-compose.services.yml laid over it is the services topology (SHOP_TOPOLOGY=services), where
each participant context has its database, migrate, participant consumer and relay, and each of its
processes is given its own database only."""

import json
import runpy
import shutil
import subprocess
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from tests import compose

CONTEXTS = ("customers", "inventory", "payments")
ORDERS_PROCESSES = ("migrate", "seed-demo", "web", "worker", "beat", "relay", "consumer")
ONE_SHOTS = ("migrate", "seed-demo", *(f"{context}-migrate" for context in CONTEXTS))
DATABASE_SETTINGS = {"DATABASE_URL", *(f"{context.upper()}_DATABASE_URL" for context in ("orders", *CONTEXTS))}


@pytest.mark.parametrize("name", sorted({name for files in compose.TOPOLOGIES.values() for name in files}))
def test_each_compose_file_follows_the_compose_specification(name):
    schema = json.loads(compose.SCHEMA.read_text())
    jsonschema.Draft7Validator(schema).validate(compose.load(name))


def _compose_cli() -> bool:
    docker = shutil.which("docker")
    return docker is not None and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _compose_cli(), reason="no docker compose CLI here: the other tests read the files")
@pytest.mark.parametrize("topology", compose.TOPOLOGIES)
def test_docker_compose_config_accepts_each_topology(topology):
    files = [option for name in compose.TOPOLOGIES[topology] for option in ("-f", name)]
    result = subprocess.run(
        ["docker", "compose", *files, "config", "--quiet"], cwd=compose.ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_the_default_stack_is_the_monolith():
    """No topology or context set: the settings' defaults, monolith and orders, on one database."""
    assert set(compose.services("monolith")) == {
        *("postgres", "redis", "kafka"),
        *("migrate", "web", "worker", "beat", "relay", "consumer"),
    }
    for name, service in compose.app_services("monolith").items():
        environment = service["environment"]
        assert not {"SHOP_TOPOLOGY", "SHOP_CONTEXT"} & set(environment), name
        assert set(environment) & DATABASE_SETTINGS == {"DATABASE_URL"}, name


def _database_server(url: str, services: dict[str, dict[str, Any]]) -> str:
    """The PostgreSQL service a URL names, checked to have the URL's user, password and database."""
    parts = urlsplit(compose.defaulted(url))
    server = services[parts.hostname or ""]["environment"]
    assert (parts.username, parts.password, parts.path.lstrip("/")) == (
        server["POSTGRES_USER"],
        compose.defaulted(server["POSTGRES_PASSWORD"]),
        server["POSTGRES_DB"],
    ), url
    return parts.hostname or ""


def _databases(environment: dict[str, str], services: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Each database setting of a process, as the server it names; no other setting names a database."""
    assert not [key for key, value in environment.items() if key not in DATABASE_SETTINGS and "postgres" in str(value)]
    return {key: _database_server(url, services) for key, url in environment.items() if key in DATABASE_SETTINGS}


def test_the_orders_processes_run_the_services_topology_and_the_gateway_reaches_every_database():
    services = compose.services("services")
    for name in ORDERS_PROCESSES:
        environment = services[name]["environment"]
        assert (environment["SHOP_TOPOLOGY"], environment["SHOP_CONTEXT"]) == ("services", "orders"), name
        expected = {"DATABASE_URL": "postgres"}  # orders' database, as in the monolith
        if name in ("web", "seed-demo"):  # the gateway: the API, and the demo data of every context
            expected |= {f"{context.upper()}_DATABASE_URL": f"{context}-postgres" for context in CONTEXTS}
        assert _databases(environment, services) == expected, name
    assert services["migrate"]["environment"]["SHOP_DEMO_DATA"] == "false"  # seed-demo's, once every schema is there
    assert services["seed-demo"]["command"][-1].endswith("then python manage.py seed_demo; fi")


@pytest.mark.parametrize("context", CONTEXTS)
def test_each_context_migrates_serves_and_relays_on_its_own_database_only(context):
    services = compose.services("services")
    commands = {
        f"{context}-migrate": ["python", "manage.py", "migrate", "--noinput"],
        f"{context}-participant": ["python", "manage.py", "run_participant", context],
        f"{context}-relay": ["python", "manage.py", "relay_outbox"],
    }
    own = f"{context}-postgres"
    assert services[own]["image"].startswith("postgres:")
    for name, command in commands.items():
        service = services[name]
        assert service["image"] == compose.APP_IMAGE and service["command"] == command, name
        environment = service["environment"]
        assert (environment["SHOP_TOPOLOGY"], environment["SHOP_CONTEXT"]) == ("services", context), name
        assert _databases(environment, services) == {"DATABASE_URL": own, f"{context.upper()}_DATABASE_URL": own}


def _awaited(services: dict[str, dict[str, Any]], name: str, seen: tuple[str, ...] = ()) -> set[str]:
    """Every service that name waits for, directly or not; a loop fails the test."""
    assert name not in seen, f"a dependency loop: {' -> '.join((*seen, name))}"
    direct = set(services[name].get("depends_on", {}))
    return direct.union(*(_awaited(services, other, (*seen, name)) for other in direct))


def test_the_services_stack_starts_in_order():
    """The key and orders' schema first, then each context's schema, then the demo data, then the
    orders processes; a context's participant and relay wait for its schema and the brokers."""
    services = compose.services("services")
    awaited = {name: _awaited(services, name) for name in services}
    for name, service in services.items():
        for other, condition in service.get("depends_on", {}).items():
            expected = "service_completed_successfully" if other in ONE_SHOTS else "service_healthy"
            assert condition == {"condition": expected}, (name, other)
    for name in ONE_SHOTS:
        assert services[name]["restart"] == "no", name
    assert awaited["seed-demo"] >= {"migrate", *(f"{context}-migrate" for context in CONTEXTS)}
    for name in ("web", "worker", "beat", "relay", "consumer"):
        assert "seed-demo" in awaited[name], name
    for context in CONTEXTS:
        assert awaited[f"{context}-migrate"] >= {f"{context}-postgres", "migrate"}  # migrate makes the key
        for process in ("participant", "relay"):
            assert awaited[f"{context}-{process}"] >= {f"{context}-migrate", "kafka", "redis"}


def test_the_scaling_note_names_the_partitions_the_participants_share(monkeypatch):
    """The relay creates each topic with the settings' KAFKA_TOPIC_PARTITIONS, which the stack leaves
    at its default, as many as the broker's own default."""
    services = compose.services("services")
    monkeypatch.delenv("KAFKA_TOPIC_PARTITIONS", raising=False)
    partitions = runpy.run_path(str(compose.ROOT / "shop" / "settings.py"))["KAFKA_TOPIC_PARTITIONS"]
    assert all("KAFKA_TOPIC_PARTITIONS" not in s["environment"] for s in compose.app_services("services").values())
    assert services["kafka"]["environment"]["KAFKA_NUM_PARTITIONS"] == partitions
    assert f"topic, whose {partitions} partitions" in (compose.ROOT / "docker-compose.services.yml").read_text()
