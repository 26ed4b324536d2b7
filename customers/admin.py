"""Customers are edited in the admin through the context's services, as through the API: the same
validation, the same `customer.*` events. Their funds holds are the ledger: shown, never edited."""

from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from common.admin import CrudAdmin, LedgerAdmin, badge, ms_field, short_id
from common.crud import StillReferenced

from . import services
from .models import Customer, FundsHold

EDITABLE = ("name", "email", "balance", "blocked")


class CustomerForm(forms.ModelForm):
    class Meta:
        model = Customer
        fields = EDITABLE

    def clean(self) -> dict[str, Any] | None:
        data = super().clean() or {}
        balance = data.get("balance")
        if self.instance.pk and balance is not None and balance < self.instance.reserved:
            self.add_error("balance", f"balance must cover the funds held by open orders ({self.instance.reserved}).")
        return data


@admin.register(Customer)
class CustomerAdmin(CrudAdmin):
    form = CustomerForm
    list_display = ("name", "email", "balance", "reserved", "available", "blocked", "created", "orders")
    list_filter = ("blocked",)
    search_fields = ("name", "email", "^id")
    fields = ("id", *EDITABLE, "reserved", "available", "created", "orders")
    readonly_fields = ("id", "reserved", "available", "created", "orders")
    created = ms_field("created_at", "created")

    @admin.display(description="available")
    def available(self, customer: Customer) -> Decimal:
        return customer.available

    @admin.display(description="orders")
    def orders(self, customer: Customer) -> SafeString:
        url = reverse("admin:orders_order_changelist")
        return format_html('<a href="{}?customer_id={}">orders</a>', url, customer.pk)

    def save_model(self, request: HttpRequest, obj: Customer, form: forms.ModelForm, change: bool) -> None:
        data = {field: form.cleaned_data[field] for field in EDITABLE}
        saved = services.customer_update(customer_id=obj.pk, data=data) if change else services.customer_create(**data)
        obj.pk, obj.created_at, obj.reserved = saved.pk, saved.created_at, saved.reserved
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: Customer) -> None:
        services.customer_delete(customer_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Customer]) -> None:
        for customer in queryset:
            try:
                services.customer_delete(customer_id=customer.pk)
            except StillReferenced as kept:
                self.message_user(request, str(kept), messages.ERROR)


@admin.register(FundsHold)
class FundsHoldAdmin(LedgerAdmin):
    list_display = ("order", "customer", "amount", "status_badge", "reason", "updated")
    list_filter = ("status", "reason")
    search_fields = ("^order_id", "customer__name")
    fields = ("order", "customer", "amount", "status_badge", "reason", "created", "updated")
    readonly_fields = fields
    created = ms_field("created_at", "created")
    updated = ms_field("updated_at", "updated")

    @admin.display(description="order", ordering="order_id")
    def order(self, hold: FundsHold) -> SafeString:
        url = reverse("admin:orders_order_change", args=[hold.order_id])
        return format_html('<a href="{}" title="{}">order {}</a>', url, hold.order_id, short_id(hold.order_id))

    @admin.display(description="status", ordering="status")
    def status_badge(self, hold: FundsHold) -> SafeString:
        return badge(hold.status)
