from django.contrib import admin
from django.http import HttpRequest

from .models import Order, OrderLine


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    readonly_fields = ("product_id", "sku", "quantity", "unit_price")
    extra = 0
    can_delete = False


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("id", "customer_id", "total", "status", "reason", "fulfillment", "created_at")
    list_filter = ("status", "reason", "fulfillment")
    search_fields = ("id", "customer_id", "saga_id")
    date_hierarchy = "created_at"
    readonly_fields = tuple(f.name for f in Order._meta.fields)
    inlines = (OrderLineInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # orders are placed through the API, which starts their saga
