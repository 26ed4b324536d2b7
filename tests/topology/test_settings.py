"""SHOP_TOPOLOGY and SHOP_CONTEXT: which databases a process of either topology reaches (docs/topology.md)."""

import runpy
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

SETTINGS = Path(__file__).resolve().parents[2] / "shop" / "settings.py"
CONTEXTS = ("orders", "customers", "inventory", "payments")
TOPOLOGY_VARIABLES = (
    "SHOP_TOPOLOGY",
    "SHOP_CONTEXT",
    "SAGA_REMOTE_PARTICIPANTS",
    *(f"{context.upper()}_DATABASE_URL" for context in CONTEXTS),
)
SERVER = "postgres://shop@db.example.com:5432"
OWN_DATABASES = {f"{context.upper()}_DATABASE_URL": f"{SERVER}/{context}" for context in CONTEXTS}


@pytest.fixture
def load(monkeypatch):
    """The settings module evaluated afresh under the given environment (the running settings stay)."""

    def load(**env: str) -> dict:
        for name in TOPOLOGY_VARIABLES:
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("DATABASE_URL", f"{SERVER}/shop")
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return runpy.run_path(str(SETTINGS))

    return load


def test_the_monolith_is_the_default_with_one_database_and_local_participants(load):
    settings = load(**OWN_DATABASES)  # ignored by the monolith
    assert settings["SHOP_TOPOLOGY"] == "monolith"
    assert {alias: db["NAME"] for alias, db in settings["DATABASES"].items()} == {"default": "shop"}
    assert settings["SAGA_REMOTE_PARTICIPANTS"] == []


def test_the_gateway_of_the_services_reaches_every_context_database_with_the_same_options(load):
    settings = load(SHOP_TOPOLOGY="services", **OWN_DATABASES)
    databases = settings["DATABASES"]
    assert {alias: db["NAME"] for alias, db in databases.items()} == {
        "default": "orders",
        "customers": "customers",
        "inventory": "inventory",
        "payments": "payments",
    }
    for db in databases.values():
        assert db["CONN_MAX_AGE"] == 60 and db["CONN_HEALTH_CHECKS"] is True
        assert db["OPTIONS"]["keepalives"] == 1 and "idle_in_transaction_session_timeout" in db["OPTIONS"]["options"]
    assert settings["SAGA_REMOTE_PARTICIPANTS"] == ["customers", "inventory", "payments"]


def test_a_participant_process_has_only_its_own_database(load):
    settings = load(SHOP_TOPOLOGY="services", SHOP_CONTEXT="payments", PAYMENTS_DATABASE_URL=f"{SERVER}/payments")
    assert {alias: db["NAME"] for alias, db in settings["DATABASES"].items()} == {"default": "payments"}


def test_the_services_refuse_a_participant_context_left_local(load):
    # Its rows are in its own database: a local call could not commit them with the saga's step.
    with pytest.raises(ImproperlyConfigured, match="SAGA_REMOTE_PARTICIPANTS leaves out customers, inventory"):
        load(SHOP_TOPOLOGY="services", SAGA_REMOTE_PARTICIPANTS="payments", **OWN_DATABASES)


def test_the_services_refuse_two_contexts_in_one_database(load):
    with pytest.raises(ImproperlyConfigured, match="customers and orders are both in 'shop'"):
        load(SHOP_TOPOLOGY="services", ORDERS_DATABASE_URL=f"{SERVER}/shop")


@pytest.mark.parametrize(
    ("env", "refusal"),
    [
        ({"SHOP_TOPOLOGY": "microservices"}, "SHOP_TOPOLOGY='microservices' is unknown: use one of monolith, services"),
        ({"SHOP_CONTEXT": "shipping"}, "SHOP_CONTEXT='shipping' is unknown: use one of orders, customers"),
    ],
)
def test_an_unknown_topology_or_context_is_refused(load, env, refusal):
    with pytest.raises(ImproperlyConfigured, match=refusal):
        load(**env)
