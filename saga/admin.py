from django.contrib import admin, messages

from . import services
from .models import SagaInstance, SagaStep


class SagaStepInline(admin.TabularInline):
    model = SagaStep
    fields = ["name", "kind", "status", "attempt", "started_at", "finished_at", "error"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ["id"]

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SagaInstance)
class SagaInstanceAdmin(admin.ModelAdmin):
    list_display = ["id", "type", "version", "status", "current_step", "attempts", "aggregate_id", "updated_at"]
    list_filter = ["status", "type", "direction"]
    search_fields = ["id", "aggregate_id", "correlation_id"]
    readonly_fields = [f.name for f in SagaInstance._meta.fields]
    inlines = [SagaStepInline]
    actions = ["retry", "compensate"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Retry: resume where it stopped", permissions=["change"])
    def retry(self, request, queryset) -> None:
        self._operate(request, queryset, services.saga_retry, "resumed")

    @admin.action(description="Compensate: roll back (before the pivot only)", permissions=["change"])
    def compensate(self, request, queryset) -> None:
        self._operate(request, queryset, services.saga_compensate, "rolling back")

    def _operate(self, request, queryset, operation, done: str) -> None:
        for saga_id in queryset.values_list("id", flat=True):
            try:
                operation(saga_id=saga_id)
                self.message_user(request, f"saga {saga_id}: {done}", messages.SUCCESS)
            except services.SagaStateConflict as conflict:
                self.message_user(request, f"saga {saga_id}: {conflict}", messages.WARNING)
