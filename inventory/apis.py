from rest_framework import serializers

from shop.api import CrudServices, ServiceViewSet
from shop.money import MAX_DIGITS, PLACES

from . import selectors, services

MAX_STOCK = 2_147_483_647


class ProductInput(serializers.Serializer):
    sku = serializers.RegexField(r"^[A-Za-z0-9._-]+$", max_length=64)
    name = serializers.CharField(max_length=200)
    price = serializers.DecimalField(max_digits=MAX_DIGITS, decimal_places=PLACES, min_value=0)
    stock = serializers.IntegerField(min_value=0, max_value=MAX_STOCK)


class ProductOutput(serializers.Serializer):
    id = serializers.UUIDField()
    sku = serializers.CharField()
    name = serializers.CharField()
    price = serializers.DecimalField(max_digits=MAX_DIGITS, decimal_places=PLACES)
    stock = serializers.IntegerField()
    reserved = serializers.IntegerField()
    available = serializers.IntegerField()


class ProductViewSet(ServiceViewSet):
    """Products: `stock` is on hand, `reserved` is held by open orders."""

    queryset = selectors.product_list()
    filterset_fields = ("sku",)
    input_serializer_class = ProductInput
    output_serializer_class = ProductOutput
    services = CrudServices(
        create=lambda data: services.product_create(**data),
        update=lambda pk, data: services.product_update(product_id=pk, data=data),
        delete=lambda pk: services.product_delete(product_id=pk),
    )
