"""What came in: the inbox (each consumed message's id, acted on once) and the commands a
participant served (each command id with its stored result, answered again on redelivery)."""

from django.contrib import admin

from saga.models import InboxMessage, ProcessedCommand
from saga.operator.display import LedgerAdmin, ms_field


@admin.register(InboxMessage)
class InboxMessageAdmin(LedgerAdmin):
    list_display = ("id", "type", "topic", "key", "correlation_id", "received")
    list_filter = ("topic", "type")
    search_fields = ("^id", "^correlation_id", "=key")
    received = ms_field("received_at", "received")


@admin.register(ProcessedCommand)
class ProcessedCommandAdmin(LedgerAdmin):
    list_display = ("command_id", "participant", "command", "processed")
    list_filter = ("participant", "command")
    search_fields = ("^command_id",)
    processed = ms_field("processed_at", "processed")
