"""The outbox's own commands and tasks: republish, purge, lag (real PostgreSQL)."""

import contextlib
import uuid
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.db import transaction
from django.db.transaction import TransactionManagementError
from django.utils import timezone

from saga.messaging import caused_by, publish, published_together
from saga.messaging.outbox import envelope
from saga.messaging.relay import outbox_lag_seconds
from saga.models import OutboxMessage
from saga.tasks import purge_outbox


def sent(**fields) -> OutboxMessage:
    message = publish(type="toy.reserved", key=fields.pop("key", uuid.uuid4()), payload={}, **fields)
    OutboxMessage.objects.filter(pk=message.pk).update(sent_at=timezone.now())
    return message


def test_republish_marks_the_chosen_messages_unsent_with_their_ids(db, capsys):
    order_id, saga_id = uuid.uuid4(), uuid.uuid4()
    mine = sent(key=order_id, correlation_id=saga_id)
    other = sent()
    call_command("republish_events", "--order", str(order_id), "--dry-run")
    assert "would republish 1" in capsys.readouterr().out
    assert OutboxMessage.objects.get(pk=mine.pk).sent_at is not None
    call_command("republish_events", "--order", str(order_id))
    assert OutboxMessage.objects.get(pk=mine.pk).sent_at is None
    assert OutboxMessage.objects.get(pk=other.pk).sent_at is not None
    assert OutboxMessage.objects.get(pk=mine.pk).id == mine.id


def test_republish_since_a_time(db):
    old, new = sent(), sent()
    OutboxMessage.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=2))
    call_command("republish_events", "--since", (timezone.now() - timedelta(days=1)).isoformat())
    assert OutboxMessage.objects.filter(sent_at__isnull=True).get().pk == new.pk


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--order", "nope"],
        ["--saga", str(uuid.uuid4())],
        ["--since", "yesterday"],
        ["--since", "2026-01-01T00:00:00"],
    ],
)
def test_republish_bad_arguments_are_clear_errors(db, args):
    with pytest.raises(CommandError):
        call_command("republish_events", *args)


def test_purge_deletes_only_sent_messages_past_retention(db, settings):
    settings.OUTBOX_RETENTION = 3600
    old, recent = sent(), sent()
    unsent = publish(type="toy.reserved", key=uuid.uuid4(), payload={})
    OutboxMessage.objects.filter(pk=old.pk).update(sent_at=timezone.now() - timedelta(hours=2))
    assert purge_outbox() == 1
    assert set(OutboxMessage.objects.values_list("pk", flat=True)) == {recent.pk, unsent.pk}


def test_lag_is_the_age_of_the_oldest_unsent_message(db):
    assert outbox_lag_seconds() == 0.0
    waiting = publish(type="toy.reserved", key=uuid.uuid4(), payload={})
    OutboxMessage.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(seconds=42))
    assert 42 <= outbox_lag_seconds() < 60


def test_messages_name_their_cause(db):
    saga_id, command_id = uuid.uuid4(), uuid.uuid4()
    with caused_by(saga_id, command_id):
        caused = publish(type="toy.reserved", key=uuid.uuid4(), payload={"order_id": None})
    alone = publish(type="toy.shipped", key=uuid.uuid4(), payload={})
    assert (caused.correlation_id, caused.causation_id, caused.topic) == (saga_id, command_id, "toy_events")
    assert (alone.correlation_id, alone.causation_id) == (alone.id, None)  # a conversation of its own
    body = envelope(caused)
    assert body["schema_version"] == 1 and body["timestamp"].endswith("Z")


@pytest.mark.parametrize("inner_together", [False, True], ids=["savepoint", "savepoint_and_inner_block"])
def test_a_message_published_in_a_savepoint_under_published_together_is_refused(db, inner_together):
    """Its INSERT waits for the block's end, outside the savepoint: were it taken, a rollback of
    the savepoint would not take it back. (An inner block would write its messages before the
    outer block's earlier ones: it is part of the outer one.)"""
    kept = uuid.uuid4()
    with transaction.atomic(), published_together():
        publish(type="toy.reserved", key=kept, payload={})
        inner = published_together() if inner_together else contextlib.nullcontext()
        with pytest.raises(TransactionManagementError), transaction.atomic(), inner:
            publish(type="toy.reserved", key=uuid.uuid4(), payload={})
    assert list(OutboxMessage.objects.values_list("aggregate_id", flat=True)) == [str(kept)]


def test_a_savepoint_rolled_back_under_published_together_announces_nothing_of_it(db):
    kept = uuid.uuid4()
    with transaction.atomic(), published_together():
        publish(type="toy.reserved", key=kept, payload={})
        try:
            with transaction.atomic():
                publish(type="toy.reserved", key=uuid.uuid4(), payload={})
                raise RuntimeError("the savepoint's work fails")
        except (RuntimeError, TransactionManagementError):
            pass
    assert list(OutboxMessage.objects.values_list("aggregate_id", flat=True)) == [str(kept)]


def test_published_together_outside_a_transaction_is_refused(transactional_db):
    """Its INSERT would come after whatever the messages announce had committed, or rolled back."""
    with pytest.raises(TransactionManagementError), published_together(), transaction.atomic():
        publish(type="toy.reserved", key=uuid.uuid4(), payload={})
    assert not OutboxMessage.objects.exists()
