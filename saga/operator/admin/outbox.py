"""The outbox: every message written for the relay, sent or not, with the relay's lag on top of
the list and a link from a message to the saga it is about."""

import json
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from saga.messaging.relay import outbox_lag_seconds
from saga.models import OutboxMessage, SagaInstance
from saga.operator.display import LedgerAdmin, badge, ms_field, short_id, timestamp


@admin.register(OutboxMessage)
class OutboxMessageAdmin(LedgerAdmin):
    list_display = ("position", "type", "topic", "key", "correlation", "created", "sent")
    list_filter = (("sent_at", admin.EmptyFieldListFilter), "topic", "type")
    search_fields = ("=aggregate_id", "^correlation_id", "^id")
    search_help_text = "A message id, its key (the id of what it is about) or its correlation id (the saga id)."
    readonly_fields = (
        "id",
        "position",
        "topic",
        "type",
        "key",
        "correlation",
        "causation_id",
        "created",
        "sent",
        "payload_json",
    )
    fields = readonly_fields
    created = ms_field("created_at", "created")

    @admin.display(description="key", ordering="aggregate_id")
    def key(self, message: OutboxMessage) -> str:
        return f"{message.aggregate_type}:{message.aggregate_id}"

    @admin.display(description="correlation id")
    def correlation(self, message: OutboxMessage) -> SafeString:
        saga = None
        if message.correlation_id is not None:
            saga = SagaInstance.objects.filter(pk=message.correlation_id).values_list("pk", flat=True).first()
        if saga is None:
            return format_html("<code>{}</code>", short_id(message.correlation_id))
        url = reverse("admin:saga_sagainstance_change", args=[saga])
        return format_html('<a href="{}" title="the saga">saga {}</a>', url, short_id(saga))

    @admin.display(description="sent", ordering="sent_at")
    def sent(self, message: OutboxMessage) -> SafeString:
        if message.sent_at is None:
            return badge("FAILED", "unsent", muted=True)
        return format_html("{}", timestamp(message.sent_at))

    @admin.display(description="payload")
    def payload_json(self, message: OutboxMessage) -> SafeString:
        return format_html('<pre class="saga-pre">{}</pre>', json.dumps(message.payload, indent=2))

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        unsent = OutboxMessage.objects.filter(sent_at__isnull=True).count()
        self.message_user(request, f"Unsent: {unsent} · relay lag: {outbox_lag_seconds():.1f} s", messages.INFO)
        return super().changelist_view(request, extra_context)
