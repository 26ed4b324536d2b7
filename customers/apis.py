from rest_framework import serializers

from shop.api import CrudServices, ServiceViewSet
from shop.money import MAX_DIGITS, PLACES

from . import selectors, services


class CustomerInput(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    email = serializers.EmailField(required=False, allow_blank=True)
    balance = serializers.DecimalField(max_digits=MAX_DIGITS, decimal_places=PLACES, min_value=0)
    blocked = serializers.BooleanField(required=False)


class CustomerOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    email = serializers.EmailField()
    balance = serializers.DecimalField(max_digits=MAX_DIGITS, decimal_places=PLACES)
    reserved = serializers.DecimalField(max_digits=MAX_DIGITS, decimal_places=PLACES)
    available = serializers.DecimalField(max_digits=MAX_DIGITS, decimal_places=PLACES)
    blocked = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class CustomerViewSet(ServiceViewSet):
    """Customer accounts: `balance` is owned, `reserved` is held by open orders."""

    queryset = selectors.customer_list()
    filterset_fields = ("blocked", "email")
    input_serializer_class = CustomerInput
    output_serializer_class = CustomerOutput
    services = CrudServices(
        create=lambda data: services.customer_create(**data),
        update=lambda pk, data: services.customer_update(customer_id=pk, data=data),
        delete=lambda pk: services.customer_delete(customer_id=pk),
    )
