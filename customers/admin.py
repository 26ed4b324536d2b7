from decimal import Decimal

from django.contrib import admin

from .models import Customer, FundsHold


@admin.register(Customer)
class CustomerAdmin(admin.ModelAdmin):
    list_display = ("name", "email", "balance", "reserved", "available", "blocked", "created_at")
    list_filter = ("blocked",)
    search_fields = ("name", "email", "id")
    readonly_fields = ("id", "reserved", "available", "created_at")

    @admin.display(description="available")
    def available(self, customer: Customer) -> Decimal:
        return customer.available


@admin.register(FundsHold)
class FundsHoldAdmin(admin.ModelAdmin):
    list_display = ("order_id", "customer", "amount", "status", "reason", "updated_at")
    list_filter = ("status", "reason")
    search_fields = ("order_id", "customer__name")
    readonly_fields = tuple(f.name for f in FundsHold._meta.fields)
