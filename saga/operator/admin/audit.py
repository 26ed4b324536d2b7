"""The audit trail: every operator action (and the system's own), who, when, on what, and what
it changed."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from saga.models import OperatorAction
from saga.operator.display import LedgerAdmin, ms_field, short_id


@admin.register(OperatorAction)
class OperatorActionAdmin(LedgerAdmin):
    list_display = ("when", "who", "action", "target", "step", "change", "outcome", "detail", "comment")
    list_filter = ("action", "outcome", "username")
    search_fields = ("^saga__id", "username", "comment")
    when = ms_field("created_at", "when")

    @admin.display(description="who", ordering="username")
    def who(self, record: OperatorAction) -> str:
        return record.username or "system"

    @admin.display(description="target")
    def target(self, record: OperatorAction) -> SafeString:
        if record.saga_id:
            url = reverse("admin:saga_sagainstance_change", args=[record.saga_id])
            return format_html('<a href="{}">saga {}</a>', url, short_id(record.saga_id))
        url = reverse("admin:saga_deadletter_change", args=[record.dead_letter_id])
        return format_html('<a href="{}">dead letter {}</a>', url, record.dead_letter_id)

    @admin.display(description="status")
    def change(self, record: OperatorAction) -> str:
        if not record.status_before:
            return ""
        return (
            record.status_before
            if record.status_before == record.status_after
            else f"{record.status_before} → {record.status_after}"
        )
