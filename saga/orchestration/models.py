"""The saga engine's state: instances, their step history, the commands participants served, and
what operators did to sagas and dead letters."""

import uuid

from django.conf import settings
from django.db import models

from ..messaging.models import DeadLetter


class SagaStatus(models.TextChoices):
    STARTED = "STARTED"  # moving forward
    WAITING = "WAITING"  # for an event or a timer
    COMPENSATING = "COMPENSATING"
    COMPLETED = "COMPLETED"
    COMPENSATED = "COMPENSATED"  # rolled back cleanly
    FAILED = "FAILED"  # stopped; needs an operator


ACTIVE = (SagaStatus.STARTED, SagaStatus.WAITING, SagaStatus.COMPENSATING)
TERMINAL = (SagaStatus.COMPLETED, SagaStatus.COMPENSATED, SagaStatus.FAILED)


class Direction(models.TextChoices):
    FORWARD = "FORWARD"
    BACKWARD = "BACKWARD"


class SagaInstance(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    type = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=SagaStatus.choices, default=SagaStatus.STARTED)
    direction = models.CharField(max_length=8, choices=Direction.choices, default=Direction.FORWARD)
    # Forward: the next step to run. Backward: the next step to compensate (-1: none left).
    step_index = models.IntegerField(default=0)
    current_step = models.CharField(max_length=100, blank=True, default="")
    attempts = models.PositiveIntegerField(default=0, help_text="Attempts at the current step.")
    crashes = models.PositiveIntegerField(
        default=0, help_text="Workers that died in the current step since it was entered or retried."
    )
    claimed = models.BooleanField(
        default=False,
        db_default=False,  # rows written without the ORM (bench, operators' SQL) need no value
        help_text="An attempt was claimed for a second transaction and has not finished.",
    )
    aggregate_id = models.UUIDField(db_index=True, help_text="The business entity (e.g. the order).")
    correlation_id = models.UUIDField(db_index=True)
    data = models.JSONField(default=dict)
    reason = models.CharField(max_length=40, blank=True, default="", help_text="Why it is rolling back.")
    error = models.TextField(blank=True, default="")
    # When the sweeper must look at it (a timer, a backoff, or "should have moved by now").
    wake_at = models.DateTimeField(null=True, blank=True)
    # Not before: the end of a backoff.
    retry_at = models.DateTimeField(null=True, blank=True)
    # When the current wait gives up on its event.
    timer_at = models.DateTimeField(null=True, blank=True)
    deadline = models.DateTimeField(null=True, blank=True)
    # An operator marked this FAILED saga resolved (its status stays FAILED: the contract's statuses
    # are the engine's; the comment and who did it are in its OperatorAction rows).
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["wake_at"], name="saga_due", condition=models.Q(status__in=ACTIVE)),
            models.Index(fields=["status", "type"], name="saga_status_type"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.id} {self.status}"


class SagaStep(models.Model):
    """One attempt of one action or compensation: the saga's history."""

    class Kind(models.TextChoices):
        ACTION = "action"
        COMPENSATION = "compensation"

    class Status(models.TextChoices):
        RUNNING = "RUNNING"
        SUCCEEDED = "SUCCEEDED"
        REFUSED = "REFUSED"
        FAILED = "FAILED"
        SKIPPED = "SKIPPED"
        SENT = "SENT"  # its command went to a remote participant; the reply runs the step again
        CRASHED = "CRASHED"  # its worker died in the middle
        ABANDONED = "ABANDONED"  # the saga was redirected (cancel, operator) before it ran

    saga = models.ForeignKey(SagaInstance, on_delete=models.CASCADE, related_name="steps")
    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=12, choices=Kind.choices)
    status = models.CharField(max_length=10, choices=Status.choices)
    attempt = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    result = models.JSONField(null=True, blank=True)
    # The process that claimed the attempt (host:pid), to tell a worker that died from one that
    # only lost its database connection.
    worker = models.CharField(max_length=200, blank=True, default="", db_default="")  # raw writers too (bench)

    class Meta:
        ordering = ["saga", "id"]

    def __str__(self) -> str:
        return f"{self.name} {self.kind} #{self.attempt} {self.status}"


class ProcessedCommand(models.Model):
    """A command a participant served from Kafka, with its result, recorded in the transaction of
    its effect: the same command sent again (after a lost or late reply) gets the same answer
    without being run twice."""

    command_id = models.UUIDField(primary_key=True)
    participant = models.CharField(max_length=100)
    command = models.CharField(max_length=100)
    result = models.JSONField()
    processed_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.participant} {self.command} {self.command_id}"


class SagaDefinitionRecord(models.Model):
    """The steps (names and kinds, in order) of a saga definition's version, recorded the first time
    a saga of it ran. A saga's progress is a step index into these steps, so a process whose code
    gives the same (type, version) other steps must not start or move sagas of it (see
    saga/orchestration/registry.py): a change of steps is a new version."""

    type = models.CharField(max_length=100)
    version = models.PositiveIntegerField()
    steps = models.JSONField(help_text="[[name, kind], ...] in order; kind is the step's kind or 'wait'.")
    recorded_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["type", "version"], name="saga_definition_once")]

    def __str__(self) -> str:
        return f"{self.type} v{self.version}"


class OperatorAction(models.Model):
    """The audit trail of operators: who did what to which saga or dead letter, when, why, and
    what came of it. Written in the transaction of the action itself (or, for an action the
    state refused, on its own), never changed afterwards."""

    class Action(models.TextChoices):
        RETRY = "retry"
        COMPENSATE = "compensate"
        REWIND = "rewind"
        RESOLVE = "resolve"
        REPLAY_DEAD_LETTER = "replay_dead_letter", "replay dead letter"
        DISCARD_DEAD_LETTER = "discard_dead_letter", "discard dead letter"

    class Outcome(models.TextChoices):
        DONE = "done"
        NOTHING = "nothing", "nothing to do"  # repeated: the first one did it
        REFUSED = "refused"  # the state did not allow it; nothing changed
        FAILED = "failed"  # tried, and it did not work (a dead letter still unusable)

    action = models.CharField(max_length=24, choices=Action.choices)
    saga = models.ForeignKey(
        SagaInstance, null=True, blank=True, on_delete=models.PROTECT, related_name="operator_actions"
    )
    dead_letter = models.ForeignKey(
        DeadLetter, null=True, blank=True, on_delete=models.PROTECT, related_name="operator_actions"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    username = models.CharField(max_length=150, help_text="Kept when the user is deleted; empty: the system.")
    comment = models.TextField(blank=True, default="")
    step = models.CharField(max_length=100, blank=True, default="", help_text="The step a rewind went back to.")
    status_before = models.CharField(max_length=12, blank=True, default="")
    status_after = models.CharField(max_length=12, blank=True, default="")
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    detail = models.TextField(blank=True, default="")
    # The operator's request key (a confirmation form's token, an API Idempotency-Key): the same
    # key sent again gets this row back and changes nothing.
    key = models.CharField(max_length=300, null=True, blank=True, unique=True)  # unique: NULL when none is given
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        target = f"saga {self.saga_id}" if self.saga_id else f"dead letter {self.dead_letter_id}"
        return f"{self.action} of {target} by {self.username or 'system'}: {self.outcome}"
