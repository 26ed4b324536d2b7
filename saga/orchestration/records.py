"""Participant records: the record a participant keeps of what it did for one aggregate (for an
order: a funds hold, a stock reservation, a payment), keyed by the aggregate's id, and how it
announces each status it reaches. Public: a participant's models and commands use what this
module defines.

One row per aggregate is what makes every command of a participant idempotent: a command sent
again finds the row and answers as the first time. A compensation that finds no row leaves a
tombstone, so the command it undoes, if it arrives late (a reordered or redelivered message),
finds its aggregate already undone and does nothing; the tombstone itself is not announced.

The engine's rather than each project's: it is the participant's half of a saga (commands safe to
repeat, a compensation that may overtake its command), and it writes on the hot path of every
step, with the engine's one-statement insert (`saga.core.rows`), which stays private.
"""

from collections.abc import Callable
from typing import Any, TypeVar

from django.db import models, transaction

from saga.core.rows import rows_insert
from saga.messaging import Message, publish_message

R = TypeVar("R", bound="ParticipantRecord")
F = TypeVar("F", bound=Callable[..., Any])


def participant_command(function: F) -> F:
    """A participant's command is a transaction of its own, or part of its caller's without a
    savepoint: a saga step that fails rolls back whole, and a caller that goes on after a failed
    command (a careful step, a remote participant) keeps a savepoint of its own around it."""
    return transaction.atomic(savepoint=False)(function)


class ParticipantRecord(models.Model):
    """Each record declares its primary key (the aggregate's id, e.g. `order_id =
    models.UUIDField(primary_key=True)`), its `status` field (with its own choices) and the event
    announcing its status (`event`: a declared message, see saga.messaging)."""

    reason = models.CharField(max_length=40, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    status: Any  # the subclass's field

    class Meta:
        abstract = True

    def event(self) -> Message:
        raise NotImplementedError(f"{type(self).__name__} says which event announces its status")


def record_announce(record: ParticipantRecord) -> None:
    publish_message(record.event(), key=record.pk)


def record_create(model: type[R], *, pk: Any, status: str, **fields: Any) -> R:
    """The aggregate's record, created in `status` and announced; or the one already there (a
    command sent again, or two at once: the primary key lets one of them win)."""
    record = model(pk=pk, status=status, **fields)
    if _inserted(record):
        record_announce(record)
        return record
    return model._default_manager.get(pk=pk)


def record_move(record: ParticipantRecord, status: str) -> None:
    record.status = status
    record.save(update_fields=["status", "updated_at"])
    record_announce(record)


def record_locked_or_tombstone(model: type[R], *, pk: Any, tombstone: str, **fields: Any) -> R:
    """For a compensation: the aggregate's record, locked; or, if there is none, a tombstone in
    status `tombstone`. A tombstone is not a fact (nothing was held, reserved or paid), so it is
    not announced."""
    record = model._default_manager.select_for_update().filter(pk=pk).first()
    if record is not None:
        return record
    tombstone_record = model(pk=pk, status=tombstone, **fields)
    if _inserted(tombstone_record):
        return tombstone_record
    # The command committed its record while we looked: undo it like any other.
    return model._default_manager.select_for_update().get(pk=pk)


def _inserted(record: ParticipantRecord) -> bool:
    """Insert the record unless its aggregate has one: True if it is new. One statement, where
    get_or_create takes four (a select, and the insert in a savepoint)."""
    return rows_insert([record], skip_conflicts=True) == 1
