"""The services topology on real databases (docs/topology.md): each context's tables in its own
database only, and the web gateway writing a context's rows, with the events announcing them, in
that context's database. Run by the SHOP_TOPOLOGY=services run of `make test`."""

import json
import os
import subprocess
import sys
from pathlib import Path

import dj_database_url
import pytest
from django.apps import apps
from django.db import connections
from django.test import Client

from customers.models import Customer
from inventory.models import Product
from saga.models import OutboxMessage

pytestmark = [pytest.mark.topology("services"), pytest.mark.django_db(databases="__all__")]

ROOT = Path(__file__).resolve().parents[2]
PARTICIPANTS = ("customers", "inventory", "payments")
# What every participant's process needs of the engine: its outbox, inbox, dead letters, and the commands it served.
MESSAGING_TABLES = {"saga_outboxmessage", "saga_inboxmessage", "saga_deadletter", "saga_processedcommand"}


def tables(alias: str) -> set[str]:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {name for (name,) in cursor.fetchall()}


def outbox_trigger(alias: str) -> bool:
    """The trigger that wakes the database's relay (saga 0001's RunSQL)."""
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_trigger WHERE tgname = 'saga_outbox_notify'")
        return cursor.fetchone() is not None


def tables_of(app_label: str) -> set[str]:
    return {model._meta.db_table for model in apps.get_app_config(app_label).get_models()}


@pytest.mark.parametrize("context", PARTICIPANTS)
def test_a_participant_database_has_its_context_tables_and_the_messaging_tables_only(context):
    assert tables(context) == tables_of(context) | MESSAGING_TABLES | {"django_migrations"}
    assert outbox_trigger(context)


def test_the_orders_database_has_the_whole_engine_and_no_participant_context_table():
    orders = tables("default")
    assert tables_of("orders") | tables_of("saga") | {"auth_user", "authtoken_token", "django_session"} <= orders
    assert not {table for table in orders if table.startswith(tuple(f"{context}_" for context in PARTICIPANTS))}
    assert outbox_trigger("default")


def in_outbox(alias: str, type: str, key: str) -> int:
    return OutboxMessage.objects.using(alias).filter(type=type, aggregate_id=key).count()


def test_a_customer_written_through_the_gateway_is_in_the_customers_database_with_its_events(api):
    created = api.post("/api/customers", {"name": "Grace", "email": "grace@example.com", "balance": "120.00"})
    assert created.status_code == 201, created.content
    key = created.json()["id"]
    assert Customer.objects.using("customers").filter(pk=key, name="Grace").exists()
    assert in_outbox("customers", "customer.created", key) == 1
    assert api.patch(f"/api/customers/{key}", {"balance": "80.00"}).status_code == 200
    assert in_outbox("customers", "customer.updated", key) == 1
    assert api.delete(f"/api/customers/{key}").status_code == 204
    assert not Customer.objects.using("customers").filter(pk=key).exists()
    assert in_outbox("customers", "customer.deleted", key) == 1
    assert not OutboxMessage.objects.using("default").filter(aggregate_id=key).exists()


def test_a_product_written_through_the_gateway_is_in_the_inventory_database_with_its_events(api):
    created = api.post("/api/products", {"sku": "GIZMO", "name": "Gizmo", "price": "9.50", "stock": 3})
    assert created.status_code == 201, created.content
    key = created.json()["id"]
    assert Product.objects.using("inventory").filter(pk=key, sku="GIZMO").exists()
    assert in_outbox("inventory", "product.created", key) == 1
    assert api.patch(f"/api/products/{key}", {"stock": 5}).status_code == 200
    assert in_outbox("inventory", "product.updated", key) == 1
    assert api.delete(f"/api/products/{key}").status_code == 204
    assert in_outbox("inventory", "product.deleted", key) == 1
    assert not OutboxMessage.objects.using("default").filter(aggregate_id=key).exists()


def test_the_admin_adds_changes_and_deletes_a_customer_in_the_customers_database(superuser):
    admin = Client()
    admin.force_login(superuser)
    form = {"name": "Grace", "email": "grace@example.com", "balance": "120.00", "blocked": ""}
    assert admin.post("/admin/customers/customer/add/", form).status_code == 302
    grace = Customer.objects.using("customers").get(name="Grace")
    assert b"Grace" in admin.get("/admin/customers/customer/").content
    changed = admin.post(f"/admin/customers/customer/{grace.pk}/change/", {**form, "name": "Grace Hopper"})
    assert changed.status_code == 302
    assert admin.post(f"/admin/customers/customer/{grace.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Customer.objects.using("customers").filter(pk=grace.pk).exists()
    key = str(grace.pk)
    assert [in_outbox("customers", f"customer.{done}", key) for done in ("created", "updated", "deleted")] == [1, 1, 1]


def test_the_gateway_health_checks_every_database(api):
    body = api.get("/api/health").json()
    assert [body[f"database{suffix}"] for suffix in ("", "_customers", "_inventory", "_payments")] == ["ok"] * 4


@pytest.mark.django_db(databases=[])
def test_a_participant_process_connects_to_its_own_database_only():
    shown = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            "from django.conf import settings; print(__import__('json')"
            ".dumps({alias: db['NAME'] for alias, db in settings.DATABASES.items()}))",
        ],
        env={**os.environ, "SHOP_CONTEXT": "payments"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    payments = dj_database_url.parse(os.environ["PAYMENTS_DATABASE_URL"])["NAME"]
    assert json.loads(shown.stdout.strip().splitlines()[-1]) == {"default": payments}
