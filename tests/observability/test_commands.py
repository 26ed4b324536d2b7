"""Item 11 of issue 13: the operators' commands report, summarise, fail with a non-zero status,
and their --dry-run changes nothing."""

import io
import uuid

import pytest
from django.core.management import CommandError, call_command

from customers.models import Customer
from inventory.models import Product
from orders.saga import PLACE_ORDER
from saga.models import OperatorAction, OutboxMessage, SagaInstance
from saga.testing.harness import SagaHarness


def snapshot():
    return (
        list(SagaInstance.objects.order_by("id").values()),
        list(OutboxMessage.objects.order_by("position").values()),
        list(Customer.objects.order_by("pk").values()),
        list(Product.objects.order_by("pk").values()),
    )


@pytest.fixture
def sagas(api, customer, product):
    """A COMPLETED saga and one STARTED (never run)."""
    harness = SagaHarness(PLACE_ORDER)
    body = {"customer_id": str(customer.pk), "amount": "10.00"}
    done = uuid.UUID(api.post("/api/orders", body, format="json").json()["saga_id"])
    harness.run(done)
    waiting = uuid.UUID(api.post("/api/orders", body, format="json").json()["saga_id"])
    SagaInstance.objects.filter(pk=waiting).update(updated_at="2020-01-01T00:00:00Z")  # stuck
    OutboxMessage.objects.update(sent_at="2020-01-01T00:00:00Z")
    return done, waiting


def test_saga_status_counts_per_status_and_lists_the_stuck(sagas, capsys):
    done, waiting = sagas
    before = snapshot()
    call_command("saga_status")
    out = capsys.readouterr().out
    assert "COMPLETED     1" in out and "STARTED       1" in out and "total         2" in out
    assert "stuck: 1" in out and str(waiting) in out and str(done) not in out
    assert snapshot() == before


def test_republish_dry_run_lists_what_it_would_send_and_changes_nothing(sagas, capsys):
    done, _ = sagas
    before = snapshot()
    call_command("republish_events", "--saga", str(done), "--dry-run")
    out = capsys.readouterr().out
    expected = OutboxMessage.objects.filter(correlation_id=done)
    assert f"[dry run] would republish {expected.count()} messages" in out
    for message in expected:
        assert f"would send {message.type} to {message.topic}" in out and str(message.id) in out
    assert snapshot() == before
    call_command("republish_events", "--saga", str(done))
    assert OutboxMessage.objects.filter(correlation_id=done, sent_at__isnull=True).count() == expected.count()


def test_replay_dry_run_changes_nothing_and_a_failure_exits_non_zero_after_a_summary(sagas, capsys):
    done, waiting = sagas
    before = snapshot()
    call_command("replay_saga", str(done), str(waiting), "--dry-run")
    out = capsys.readouterr().out
    assert "[dry run] would replay 1 of 2 sagas" in out and "0 failed" in out
    assert snapshot() == before
    with pytest.raises(CommandError, match="1 of 2 sagas could not be replayed"):
        call_command("replay_saga", str(done), str(waiting), "--from-step", "no_such_step", "--comment", "c")
    captured = capsys.readouterr()
    assert "1 failed" in captured.out or "2 failed" in captured.out


def test_replay_dry_run_counts_only_the_sagas_it_would_replay(sagas, capsys):
    done, waiting = sagas
    call_command("replay_saga", str(done), "--dry-run")
    out = capsys.readouterr().out
    assert "nothing to do" in out
    assert "[dry run] would replay 0 of 1 sagas" in out and "1 with nothing to do" in out
    call_command("replay_saga", str(done), str(waiting), "--dry-run")
    assert "[dry run] would replay 1 of 2 sagas" in capsys.readouterr().out


class Terminal(io.StringIO):
    """What a command sees when run in a terminal."""

    def isatty(self) -> bool:
        return True


def test_the_progress_bar_is_drawn_plain_on_the_terminal(sagas):
    """Not through Django's stderr, which paints every write bold red and ends it with a newline."""
    terminal = Terminal()
    call_command("replay_saga", *map(str, sagas), "--dry-run", stderr=terminal, force_color=True)
    drawn = terminal.getvalue()
    assert "replaying:   0%|          | 0/2" in drawn
    assert "\x1b[" not in drawn and "\n" not in drawn


def test_replay_needs_a_comment_and_leaves_it_in_the_audit_trail(sagas, capsys):
    _, waiting = sagas
    with pytest.raises(CommandError, match="--comment"):
        call_command("replay_saga", str(waiting))
    with pytest.raises(CommandError, match="--comment"):
        call_command("replay_saga", str(waiting), "--comment", "  ")
    assert not OperatorAction.objects.exists()
    call_command("replay_saga", str(waiting), "--comment", "stuck since the outage")
    row = OperatorAction.objects.get()
    assert (row.saga_id, row.action, row.comment, row.outcome) == (waiting, "retry", "stuck since the outage", "done")


def test_seed_demo_dry_run_changes_nothing(db, capsys):
    call_command("seed_demo", "--dry-run")
    assert "would create 3 customers and 3 products" in capsys.readouterr().out
    assert (Customer.objects.count(), Product.objects.count()) == (0, 0)
    assert not OutboxMessage.objects.exists()
    call_command("seed_demo")
    assert "created 3 customers and 3 products" in capsys.readouterr().out
    assert (Customer.objects.count(), Product.objects.count()) == (3, 3)


def test_seed_demo_keeps_a_customer_whose_email_differs_only_in_case(db, capsys):
    call_command("seed_demo")
    Customer.objects.filter(email="ada@example.com").update(email="ADA@example.com")
    call_command("seed_demo")
    assert "created 0 customers and 0 products" in capsys.readouterr().out
    assert Customer.objects.count() == 3


def test_commands_exit_non_zero_on_failure(db):
    for args in (["replay_saga", str(uuid.uuid4())], ["republish_events", "--saga", str(uuid.uuid4())]):
        with pytest.raises(CommandError):
            call_command(*args)
