"""Orders in the admin: read-only (an order changes only through its saga and the API), with its
lines, total, status and links to its saga and its customer. Also tells the saga admin where a
place-order saga's order and customer are."""

from typing import Any
from uuid import UUID

from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from common.admin import LedgerAdmin, badge, ms_field, short_id
from customers import selectors as customers
from saga.operator.links import saga_admin_links_register

from . import services
from .models import Order


def order_admin_url(order_id: UUID) -> str:
    return reverse("admin:orders_order_change", args=[order_id])


def customer_link(saga: Any) -> list[tuple[str, str, str]]:
    """The customer of a place-order saga, for the saga's page."""
    customer_id = UUID(str(saga.data["customer_id"]))
    customer = customers.customer_get(customer_id=customer_id)
    name = customer.name if customer else f"unknown customer {short_id(customer_id)}"
    return [("customer", name, reverse("admin:customers_customer_change", args=[customer_id]))]


saga_admin_links_register(
    services.PLACE_ORDER,
    aggregate_label="order",
    aggregate_url=order_admin_url,
    related=customer_link,
    search_keys=("customer_id",),
)


@admin.register(Order)
class OrderAdmin(LedgerAdmin):
    list_display = (
        "order",
        "status_badge",
        "reason",
        "lines",
        "total",
        "fulfillment",
        "customer",
        "saga",
        "created",
    )
    list_display_links = ("order",)
    list_filter = ("status", "reason", "fulfillment")
    search_fields = ("^id", "^customer_id", "^saga_id")
    search_help_text = "An order id, a customer id or a saga id, whole or its first characters."
    date_hierarchy = "created_at"
    fields = (
        "id",
        "status_badge",
        "reason",
        "lines",
        "total",
        "fulfillment",
        "customer_detail",
        "saga",
        "created",
        "updated",
        "client_idempotency_key",
    )
    readonly_fields = fields
    created = ms_field("created_at", "created")
    updated = ms_field("updated_at", "updated")

    def get_queryset(self, request: Any) -> Any:
        return super().get_queryset(request).prefetch_related("lines")

    @admin.display(description="order", ordering="id")
    def order(self, order: Order) -> SafeString:
        return format_html('<code title="{}">{}</code>', order.id, short_id(order.id))

    @admin.display(description="status", ordering="status")
    def status_badge(self, order: Order) -> SafeString:
        return badge(order.status)

    @admin.display(description="lines")
    def lines(self, order: Order) -> SafeString:
        lines = list(order.lines.all())
        if not lines:
            return mark_safe('<span class="quiet">credit only</span>')
        return format_html_join(", ", "{} \u00d7 {}", ((line.sku, line.quantity) for line in lines))

    @admin.display(description="customer", ordering="customer_id")
    def customer(self, order: Order) -> SafeString:
        url = reverse("admin:customers_customer_change", args=[order.customer_id])
        return format_html('<a href="{}" title="{}">{}</a>', url, order.customer_id, short_id(order.customer_id))

    @admin.display(description="customer")
    def customer_detail(self, order: Order) -> SafeString:
        found = customers.customer_get(customer_id=order.customer_id)
        if found is None:
            return format_html("unknown customer <code>{}</code>", order.customer_id)
        url = reverse("admin:customers_customer_change", args=[order.customer_id])
        return format_html('<a href="{}">{}</a> <code>{}</code>', url, found.name, order.customer_id)

    @admin.display(description="idempotency key")
    def client_idempotency_key(self, order: Order) -> str | None:
        return order.client_idempotency_key

    @admin.display(description="saga", ordering="saga_id")
    def saga(self, order: Order) -> SafeString:
        if order.saga_id is None:
            return mark_safe("—")
        url = reverse("admin:saga_sagainstance_change", args=[order.saga_id])
        return format_html('<a href="{}" title="{}">saga {}</a>', url, order.saga_id, short_id(order.saga_id))
