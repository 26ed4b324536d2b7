"""The outbox and inbox tables: messages to send, messages consumed, and the ones that could not be used."""

import uuid

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models


class OutboxMessage(models.Model):
    """A message to announce, written in the same transaction as the change it announces.

    Columns follow Debezium's outbox event router (id, aggregate type, aggregate id = key, type,
    payload), so a CDC relay could replace ours. `position` orders the relay's batches.
    """

    position = models.BigAutoField(primary_key=True)
    id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    topic = models.CharField(max_length=200)
    aggregate_type = models.CharField(max_length=50)
    aggregate_id = models.CharField(max_length=100, help_text="The Kafka key: the id of what the message is about.")
    type = models.CharField(max_length=100)
    payload = models.JSONField(default=dict, encoder=DjangoJSONEncoder)
    correlation_id = models.UUIDField(null=True, blank=True)
    causation_id = models.UUIDField(null=True, blank=True)
    # The HTTP request behind it (sent as the Kafka header request_id, for the logs downstream).
    request_id = models.UUIDField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["position"]
        indexes = [
            models.Index(fields=["position"], name="outbox_unsent", condition=models.Q(sent_at__isnull=True)),
            models.Index(fields=["sent_at"], name="outbox_sent_at", condition=models.Q(sent_at__isnull=False)),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.aggregate_id}"


class InboxMessage(models.Model):
    """The id of every consumed message, recorded in the same transaction as its effect."""

    id = models.UUIDField(primary_key=True)
    topic = models.CharField(max_length=200)
    type = models.CharField(max_length=100)
    # The envelope's correlation id and the Kafka key, so the admin can show a conversation's messages.
    correlation_id = models.UUIDField(null=True, blank=True, db_index=True)
    key = models.CharField(max_length=200, blank=True, default="", db_index=True)
    received_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.type} {self.id}"


class DeadLetter(models.Model):
    """A message the consumer could not use (bad JSON, unknown type, missing fields), until an
    operator replays it (through the inbox, so at most once) or discards it."""

    class Resolution(models.TextChoices):
        REPLAYED = "replayed"
        DISCARDED = "discarded"

    topic = models.CharField(max_length=200)
    partition = models.IntegerField()
    offset = models.BigIntegerField()
    key = models.TextField(blank=True, default="")
    value = models.TextField()
    error = models.TextField()
    received_at = models.DateTimeField(auto_now_add=True)
    resolution = models.CharField(max_length=10, choices=Resolution.choices, blank=True, default="")
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at"]

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset}"
