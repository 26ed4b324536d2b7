"""The engine installs into a project that has nothing of the shop, and tells that project what it
needs: its settings' defaults, the topics that follow from what the apps declare, and a clear
error or warning where the project forgot something."""

import uuid

import pytest
from django.apps import apps
from django.conf import settings as django_settings
from django.core.checks import ERROR, run_checks

from saga.core.conf import DEFAULTS, saga_settings
from saga.messaging import catalog, publish, topic_for
from saga.models import OutboxMessage, SagaInstance

from .conftest import order_data


def test_the_engine_installs_without_the_shop(db) -> None:
    installed = {config.name for config in apps.get_app_configs()}
    assert "saga" in installed
    assert not installed & {"shop", "orders", "customers", "inventory", "payments"}
    assert (SagaInstance.objects.count(), OutboxMessage.objects.count()) == (0, 0)  # its migrations applied


def test_the_topics_are_those_the_installed_apps_declared():
    assert catalog.roles() == ["courier_events", "saga_events", "toy_commands", "toy_events"]
    assert catalog.roles(inbound=True) == ["courier_events"]  # what consume_events reads
    assert [topic_for(role) for role in catalog.roles()] == [
        "courier_events",
        "toyshop.sagas",
        "toy_commands",
        "toy_events",
    ]


def test_outbox_rows_carry_the_declared_topics_renamed_by_kafka_topics(harness, toys, settings):
    order_id = uuid.uuid4()
    saga_id = harness.start(data=order_data(order_id), aggregate_id=order_id)
    settings.KAFKA_TOPICS = {"toy_events": "toyshop.toys"}  # and saga_events no longer renamed
    harness.run(saga_id)
    rows = OutboxMessage.objects.filter(correlation_id=saga_id).values_list(
        "type", "topic", "aggregate_type", "aggregate_id"
    )
    assert list(rows) == [
        ("saga.started", "toyshop.sagas", "saga", str(order_id)),  # under the minimal settings' KAFKA_TOPICS
        ("toy.reserved", "toyshop.toys", "toy", str(order_id)),
        ("toy.shipped", "toyshop.toys", "toy", str(order_id)),
        ("saga.completed", "saga_events", "saga", str(order_id)),
    ]


def test_publishing_a_type_no_app_declared_fails_naming_the_fix(db):
    with pytest.raises(LookupError, match=r"no app declared the message 'toy.lost': add it .*messages_declare"):
        publish(type="toy.lost", key=uuid.uuid4(), payload={})
    assert not OutboxMessage.objects.exists()


def test_unset_settings_have_the_engines_defaults():
    for name in ("OUTBOX_RETENTION", "SAGA_STALL_AFTER", "KAFKA_CONSUMER_GROUP", "SAGA_REMOTE_PARTICIPANTS"):
        assert not hasattr(django_settings, name)  # the minimal settings leave them out
    assert saga_settings.OUTBOX_RETENTION == DEFAULTS["OUTBOX_RETENTION"] == 7 * 24 * 3600.0
    assert (saga_settings.SAGA_STALL_AFTER, saga_settings.KAFKA_CONSUMER_GROUP) == (30.0, "saga")
    assert saga_settings.KAFKA_TOPIC_PARTITIONS == 4 and saga_settings.SAGA_REMOTE_PARTICIPANTS == []


def test_a_project_setting_wins_over_the_default_at_once(settings):
    settings.SAGA_STALL_AFTER = 2.5
    settings.KAFKA_CONSUMER_GROUP = "toys"
    assert (saga_settings.SAGA_STALL_AFTER, saga_settings.KAFKA_CONSUMER_GROUP) == (2.5, "toys")
    assert saga_settings.KAFKA_TOPICS == {"saga_events": "toyshop.sagas"}


def test_kafka_servers_have_no_default_and_say_so(settings):
    del settings.KAFKA_BOOTSTRAP_SERVERS
    with pytest.raises(LookupError, match="set KAFKA_BOOTSTRAP_SERVERS in your Django settings"):
        getattr(saga_settings, "KAFKA_BOOTSTRAP_SERVERS")  # noqa: B009 - the read is what raises


def test_a_name_the_engine_does_not_have_is_an_error():
    with pytest.raises(AttributeError, match="no setting OUTBOX_RETENTON"):
        getattr(saga_settings, "OUTBOX_RETENTON")  # noqa: B009 - the read is what raises


def saga_warnings() -> list:
    return [message for message in run_checks() if message.id.startswith("saga.")]


def test_the_minimal_project_passes_the_engines_checks():
    assert saga_warnings() == []


def test_a_kafka_topics_role_no_app_declared_is_warned_about(settings):
    settings.KAFKA_TOPICS = {"saga_events": "toyshop.sagas", "toys_events": "toyshop.toys"}  # a typo of toy_events
    [warning] = saga_warnings()
    assert (warning.id, warning.msg) == (
        "saga.W001",
        "KAFKA_TOPICS renames 'toys_events', a topic no app declares messages for",
    )
    assert warning.hint == "declared topics: courier_events, saga_events, toy_commands, toy_events"


def test_a_remote_participant_nobody_registered_is_warned_about(settings):
    settings.SAGA_REMOTE_PARTICIPANTS = ["toybox", "giftwrap"]
    [warning] = saga_warnings()
    assert warning.id == "saga.W002" and "'giftwrap'" in warning.msg


def test_a_fault_for_a_step_no_definition_has_stops_the_process(settings):
    settings.SAGA_FAULTS = '{"reserve_toys": {"delay": 0.1}, "wrap_toys:compensation": {"fail_attempts": 1}}'
    [error] = saga_warnings()
    assert (error.id, error.level) == ("saga.E001", ERROR) and "'wrap_toys'" in error.msg
