from django.contrib import admin

from .models import Product, StockReservation, StockReservationLine


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    list_display = ("sku", "name", "price", "stock", "reserved", "available")
    search_fields = ("sku", "name", "id")
    readonly_fields = ("id", "reserved", "available")

    @admin.display(description="available")
    def available(self, product: Product) -> int:
        return product.available


class StockReservationLineInline(admin.TabularInline):
    model = StockReservationLine
    readonly_fields = ("product", "quantity")
    extra = 0
    can_delete = False


@admin.register(StockReservation)
class StockReservationAdmin(admin.ModelAdmin):
    list_display = ("order_id", "status", "reason", "updated_at")
    list_filter = ("status",)
    search_fields = ("order_id",)
    readonly_fields = tuple(f.name for f in StockReservation._meta.fields)
    inlines = (StockReservationLineInline,)
