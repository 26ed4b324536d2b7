"""Payments are the ledger: shown, never added, changed or deleted by hand."""

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from common.admin import LedgerAdmin, badge, ms_field, short_id

from .models import Payment


@admin.register(Payment)
class PaymentAdmin(LedgerAdmin):
    list_display = ("order", "customer", "amount", "status_badge", "reason", "provider_reference", "updated")
    list_filter = ("status",)
    search_fields = ("^order_id", "^customer_id", "provider_reference")
    fields = ("order", "customer", "amount", "status_badge", "reason", "provider_reference", "created", "updated")
    readonly_fields = fields
    created = ms_field("created_at", "created")
    updated = ms_field("updated_at", "updated")

    @admin.display(description="order", ordering="order_id")
    def order(self, payment: Payment) -> SafeString:
        url = reverse("admin:orders_order_change", args=[payment.order_id])
        return format_html('<a href="{}" title="{}">order {}</a>', url, payment.order_id, short_id(payment.order_id))

    @admin.display(description="customer", ordering="customer_id")
    def customer(self, payment: Payment) -> SafeString:
        if payment.customer_id is None:
            return mark_safe("—")
        url = reverse("admin:customers_customer_change", args=[payment.customer_id])
        return format_html('<a href="{}">{}</a>', url, short_id(payment.customer_id))

    @admin.display(description="status", ordering="status")
    def status_badge(self, payment: Payment) -> SafeString:
        return badge(payment.status)
