"""Products are edited in the admin through the context's services, as through the API: the same
validation, the same `product.*` events. Stock reservations are the ledger: shown, never edited."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString

from common.admin import CrudAdmin, LedgerAdmin, LedgerInline, badge, ms_field, short_id
from common.crud import StillReferenced

from . import services
from .models import Product, StockReservation, StockReservationLine

EDITABLE = ("sku", "name", "price", "stock")


class ProductForm(forms.ModelForm):
    class Meta:
        model = Product
        fields = EDITABLE

    def clean(self) -> dict[str, Any] | None:
        data = super().clean() or {}
        stock = data.get("stock")
        if self.instance.pk and stock is not None and stock < self.instance.reserved:
            self.add_error("stock", f"stock must cover the units reserved by open orders ({self.instance.reserved}).")
        return data


@admin.register(Product)
class ProductAdmin(CrudAdmin):
    form = ProductForm
    list_display = ("sku", "name", "price", "stock", "reserved", "available")
    search_fields = ("sku", "name", "^id")
    fields = ("id", *EDITABLE, "reserved", "available")
    readonly_fields = ("id", "reserved", "available")

    @admin.display(description="available")
    def available(self, product: Product) -> int:
        return product.available

    def save_model(self, request: HttpRequest, obj: Product, form: forms.ModelForm, change: bool) -> None:
        data = {field: form.cleaned_data[field] for field in EDITABLE}
        saved = services.product_update(product_id=obj.pk, data=data) if change else services.product_create(**data)
        obj.pk, obj.reserved = saved.pk, saved.reserved
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: Product) -> None:
        services.product_delete(product_id=obj.pk)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        for product in queryset:
            try:
                services.product_delete(product_id=product.pk)
            except StillReferenced as kept:
                self.message_user(request, str(kept), messages.ERROR)


class StockReservationLineInline(LedgerInline):
    model = StockReservationLine
    fields = ("product", "quantity")
    readonly_fields = fields


@admin.register(StockReservation)
class StockReservationAdmin(LedgerAdmin):
    list_display = ("order", "status_badge", "reason", "updated")
    list_filter = ("status",)
    search_fields = ("^order_id",)
    fields = ("order", "status_badge", "reason", "created", "updated")
    readonly_fields = fields
    inlines = (StockReservationLineInline,)
    created = ms_field("created_at", "created")
    updated = ms_field("updated_at", "updated")

    @admin.display(description="order", ordering="order_id")
    def order(self, reservation: StockReservation) -> SafeString:
        url = reverse("admin:orders_order_change", args=[reservation.order_id])
        return format_html(
            '<a href="{}" title="{}">order {}</a>', url, reservation.order_id, short_id(reservation.order_id)
        )

    @admin.display(description="status", ordering="status")
    def status_badge(self, reservation: StockReservation) -> SafeString:
        return badge(reservation.status)
