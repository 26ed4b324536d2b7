from django.contrib import admin

from .models import Payment


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    list_display = ("order_id", "customer_id", "amount", "status", "reason", "updated_at")
    list_filter = ("status",)
    search_fields = ("order_id", "customer_id", "provider_reference")
    readonly_fields = tuple(f.name for f in Payment._meta.fields)
