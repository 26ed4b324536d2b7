from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse

from . import services
from .messaging.relay import outbox_lag_seconds
from .models import DeadLetter, InboxMessage, OutboxMessage, ProcessedCommand, SagaInstance, SagaStep


class SagaStepInline(admin.TabularInline):
    model = SagaStep
    fields = ("name", "kind", "status", "attempt", "started_at", "finished_at", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("id",)

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(SagaInstance)
class SagaInstanceAdmin(admin.ModelAdmin):
    list_display = ("id", "type", "version", "status", "current_step", "attempts", "aggregate_id", "updated_at")
    list_filter = ("status", "type", "direction")
    search_fields = ("id", "aggregate_id", "correlation_id")
    readonly_fields = tuple(f.name for f in SagaInstance._meta.fields)
    inlines = (SagaStepInline,)
    actions = ("retry", "compensate")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.action(description="Retry: resume where it stopped", permissions=["change"])
    def retry(self, request: HttpRequest, queryset: QuerySet[SagaInstance]) -> None:
        self._operate(request, queryset, services.saga_retry, "resumed")

    @admin.action(description="Compensate: roll back (before the pivot only)", permissions=["change"])
    def compensate(self, request: HttpRequest, queryset: QuerySet[SagaInstance]) -> None:
        self._operate(request, queryset, services.saga_compensate, "rolling back")

    def _operate(
        self, request: HttpRequest, queryset: QuerySet[SagaInstance], operation: Callable[..., object], done: str
    ) -> None:
        for saga_id in queryset.values_list("id", flat=True):
            try:
                operation(saga_id=saga_id)
                self.message_user(request, f"saga {saga_id}: {done}", messages.SUCCESS)
            except services.SagaStateConflict as conflict:
                self.message_user(request, f"saga {saga_id}: {conflict}", messages.WARNING)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


@admin.register(OutboxMessage)
class OutboxMessageAdmin(ReadOnlyAdmin):
    list_display = ("position", "type", "topic", "aggregate_id", "correlation_id", "created_at", "sent_at")
    list_filter = ("topic", "type", ("sent_at", admin.EmptyFieldListFilter))
    search_fields = ("id", "aggregate_id", "correlation_id")

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        unsent = OutboxMessage.objects.filter(sent_at__isnull=True).count()
        self.message_user(request, f"Unsent: {unsent} · relay lag: {outbox_lag_seconds():.1f} s", messages.INFO)
        return super().changelist_view(request, extra_context)


@admin.register(InboxMessage)
class InboxMessageAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "topic", "received_at")
    list_filter = ("topic", "type")
    search_fields = ("id",)


@admin.register(DeadLetter)
class DeadLetterAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "topic", "partition", "offset", "error")
    list_filter = ("topic",)
    search_fields = ("value", "error")


@admin.register(ProcessedCommand)
class ProcessedCommandAdmin(ReadOnlyAdmin):
    list_display = ("command_id", "participant", "command", "processed_at")
    list_filter = ("participant", "command")
    search_fields = ("command_id",)
