from typing import ClassVar

from rest_framework import serializers

from common import api
from common.api import CrudServices, ServiceViewSet
from common.money import MAX_DIGITS, PLACES

from . import selectors, services
from .models import Customer

_CHANGE_REFUSED = "Another customer has this email (in any case), or the balance is below the funds open orders hold."


class CustomerInput(serializers.Serializer):
    name = api.Text(max_length=200)
    email = api.Email(required=False, allow_blank=True)
    balance = api.Money()
    blocked = api.Boolean(required=False)


class CustomerOutput(serializers.Serializer):
    id = serializers.UUIDField()
    name = serializers.CharField()
    email = serializers.EmailField(allow_blank=True)
    balance = serializers.DecimalField(max_digits=MAX_DIGITS, decimal_places=PLACES)
    reserved = serializers.DecimalField(max_digits=MAX_DIGITS, decimal_places=PLACES)
    available = serializers.DecimalField(max_digits=MAX_DIGITS, decimal_places=PLACES)
    blocked = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class CustomerFilter(api.StrictFilterSet):
    blocked = api.StrictBooleanFilter()

    class Meta:
        model = Customer
        fields = ("blocked", "email")


class CustomerViewSet(ServiceViewSet):
    """Customer accounts: `balance` is owned, `reserved` is held by open orders."""

    queryset = selectors.customer_list()
    filterset_class = CustomerFilter
    input_serializer_class = CustomerInput
    output_serializer_class = CustomerOutput
    schema_conflicts: ClassVar[dict[str, str]] = {
        "create": "Another customer has this email (in any case).",
        "update": _CHANGE_REFUSED,
        "partial_update": _CHANGE_REFUSED,
        "destroy": "Orders refer to this customer (code still_referenced).",
    }
    services = CrudServices(
        create=lambda data: services.customer_create(**data),
        update=lambda pk, data: services.customer_update(customer_id=pk, data=data),
        delete=lambda pk: services.customer_delete(customer_id=pk),
    )
