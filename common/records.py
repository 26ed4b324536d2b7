"""The record a participant keeps of what it did for one order (a funds hold, a stock reservation,
a payment), and how it announces each status it reaches.

One row per order, keyed by the order id, is what makes every command of a participant
idempotent: a command sent again finds the row and answers as the first time. A compensation that
finds no row leaves a tombstone, so the command it undoes, if it arrives late (a reordered or
redelivered message), finds its order already undone and does nothing; the tombstone itself is
not announced.
"""

from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from django.db import models, transaction

from saga.core.rows import rows_insert
from saga.messaging import publish_status

R = TypeVar("R", bound="OrderRecord")
F = TypeVar("F", bound=Callable[..., Any])


def participant_command(function: F) -> F:
    """A participant's command is a transaction of its own, or part of its caller's without a
    savepoint: a saga step that fails rolls back whole, and a caller that goes on after a failed
    command (a careful step, a remote participant) keeps a savepoint of its own around it."""
    return transaction.atomic(savepoint=False)(function)


class OrderRecord(models.Model):
    """Each record adds its `status` field (with its own choices), `EVENTS` (the event type
    announcing each status) and what its events carry (`event_payload`)."""

    order_id = models.UUIDField(primary_key=True)
    reason = models.CharField(max_length=40, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    status: Any  # the subclass's field
    EVENTS: ClassVar[dict[str, str]]

    class Meta:
        abstract = True

    def event_payload(self) -> dict[str, Any]:
        return {"order_id": self.order_id}


def record_announce(record: OrderRecord) -> None:
    publish_status(
        types=record.EVENTS,
        status=record.status,
        key=record.order_id,
        payload=record.event_payload(),
        reason=record.reason,
    )


def record_create(model: type[R], *, order_id: Any, status: str, **fields: Any) -> R:
    """The order's record, created in `status` and announced; or the one already there (a command
    sent again, or two at once: the primary key lets one of them win)."""
    record = model(pk=order_id, status=status, **fields)
    if _inserted(record):
        record_announce(record)
        return record
    return model._default_manager.get(pk=order_id)


def record_move(record: OrderRecord, status: str) -> None:
    record.status = status
    record.save(update_fields=["status", "updated_at"])
    record_announce(record)


def record_locked_or_tombstone(model: type[R], *, order_id: Any, tombstone: str, **fields: Any) -> R:
    """For a compensation: the order's record, locked; or, if there is none, a tombstone in
    status `tombstone`. A tombstone is not a fact (nothing was held, reserved or paid), so it is
    not announced."""
    record = model._default_manager.select_for_update().filter(pk=order_id).first()
    if record is not None:
        return record
    tombstone_record = model(pk=order_id, status=tombstone, **fields)
    if _inserted(tombstone_record):
        return tombstone_record
    # The command committed its record while we looked: undo it like any other.
    return model._default_manager.select_for_update().get(pk=order_id)


def _inserted(record: OrderRecord) -> bool:
    """Insert the record unless its order has one: True if it is new. One statement, where
    get_or_create takes four (a select, and the insert in a savepoint)."""
    return rows_insert([record], skip_conflicts=True) == 1
