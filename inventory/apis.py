from typing import ClassVar

from rest_framework import serializers

from common import api
from common.api import CrudServices, ServiceViewSet
from common.money import MAX_DIGITS, PLACES

from . import selectors, services
from .models import Product

MAX_STOCK = 2_147_483_647


class ProductInput(serializers.Serializer):
    sku = api.Text(pattern=r"\A[A-Za-z0-9._-]+\Z", max_length=64)
    name = api.Text(max_length=200)
    price = api.Money()
    stock = api.Integer(min_value=0, max_value=MAX_STOCK)


class ProductOutput(serializers.Serializer):
    id = serializers.UUIDField()
    sku = serializers.CharField()
    name = serializers.CharField()
    price = serializers.DecimalField(max_digits=MAX_DIGITS, decimal_places=PLACES)
    stock = serializers.IntegerField()
    reserved = serializers.IntegerField()
    available = serializers.IntegerField()


class ProductFilter(api.StrictFilterSet):
    class Meta:
        model = Product
        fields = ("sku",)


class ProductViewSet(ServiceViewSet):
    """Products: `stock` is on hand, `reserved` is held by open orders."""

    queryset = selectors.product_list()
    filterset_class = ProductFilter
    input_serializer_class = ProductInput
    output_serializer_class = ProductOutput
    schema_conflicts: ClassVar[dict[str, str]] = {
        "create": "Another product has this sku.",
        "update": "Another product has this sku, or the new stock is below the units open orders hold.",
        "partial_update": "Another product has this sku, or the new stock is below the units open orders hold.",
        "destroy": "Orders refer to this product (code still_referenced).",
    }
    services = CrudServices(
        create=lambda data: services.product_create(**data),
        update=lambda pk, data: services.product_update(product_id=pk, data=data),
        delete=lambda pk: services.product_delete(product_id=pk),
    )
