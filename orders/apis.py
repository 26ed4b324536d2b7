import re
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import DataError
from django.utils.decorators import method_decorator
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, viewsets
from rest_framework import status as http
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from common import api
from common.api import UUID_PATTERN, Conflict, conflicts_as_409, on_live_connection, refusals_as_409
from common.money import MAX_DIGITS, PLACES
from common.permissions import requires
from common.schema import exactly_one_of
from saga.core.connections import AFTER_COMMIT_ATTEMPTS
from saga.operator.apis import OperatorInput, RewindInput, SagaFilter, SagaOutput, SagaViewSet
from saga.operator.rest import IDEMPOTENCY_KEY_PATTERN, MAX_IDEMPOTENCY_KEY, ErrorOutput
from saga.services import SagaBusy

from . import selectors, services
from .models import Order

MAX_ITEMS = 100
MAX_QUANTITY = 10_000  # of one item
# What else a 409 of accept and cancel may say: nothing was done, the request may be sent again.
SAGA_BUSY_409 = (
    "Or the order's saga stayed busy for a few seconds (a step in progress; code saga_busy): nothing was done, "
    "try again shortly."
)


@exactly_one_of("product_id", "sku")
class ItemInput(serializers.Serializer):
    product_id = api.UUID(required=False)
    sku = api.Text(required=False, max_length=64)
    quantity = api.Integer(min_value=1, max_value=MAX_QUANTITY)

    def validate(self, attrs: dict) -> dict:
        if ("product_id" in attrs) == ("sku" in attrs):
            raise serializers.ValidationError("Give either product_id or sku.")
        return attrs


@exactly_one_of("items", "amount")
class OrderInput(serializers.Serializer):
    customer_id = api.UUID()
    items = serializers.ListField(
        child=ItemInput(),
        required=False,
        allow_empty=False,
        min_length=1,
        max_length=MAX_ITEMS,
        help_text="Items naming the same product (by product_id or by sku) are one line of the order: their "
        "quantities add up.",
    )
    amount = api.PositiveMoney(required=False)
    fulfillment = serializers.ChoiceField(choices=Order.Fulfillment.choices, default=Order.Fulfillment.PICKUP)

    def validate(self, attrs: dict) -> dict:
        if bool(attrs.get("items")) == ("amount" in attrs):
            raise serializers.ValidationError("Give either items (the total is computed) or an amount.")
        return attrs


class LineOutput(serializers.Serializer):
    product_id = serializers.UUIDField()
    sku = serializers.CharField()
    quantity = serializers.IntegerField()
    unit_price = serializers.DecimalField(max_digits=MAX_DIGITS, decimal_places=PLACES)


class OrderOutput(serializers.Serializer):
    id = serializers.UUIDField()
    customer_id = serializers.UUIDField()
    items = LineOutput(many=True, source="lines.all")
    total = serializers.DecimalField(max_digits=MAX_DIGITS, decimal_places=PLACES)
    status = serializers.ChoiceField(choices=Order.Status.choices)
    reason = serializers.ChoiceField(choices=Order.Reason.choices, allow_null=True)
    saga_id = serializers.UUIDField(allow_null=True)
    fulfillment = serializers.ChoiceField(choices=Order.Fulfillment.choices)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class OrderFilter(api.StrictFilterSet):
    class Meta:
        model = Order
        fields = ("status", "customer_id")


class OrderStatusOutput(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=Order.Status.choices)
    reason = serializers.ChoiceField(choices=Order.Reason.choices, allow_null=True)


@method_decorator(
    name="create",
    decorator=extend_schema(
        request=OrderInput,
        responses={
            202: OrderOutput,
            409: OpenApiResponse(
                ErrorOutput,
                "The Idempotency-Key was used with another body (code idempotency_key_reused), an item names "
                "no product (code unknown_product), or the total is beyond the largest amount (code total_too_large).",
            ),
        },
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                required=False,
                pattern=IDEMPOTENCY_KEY_PATTERN,
                description="The same key with the same body answers the first order again; with another, 409.",
            ),
            OpenApiParameter("Location", str, OpenApiParameter.HEADER, response=[202], required=True),
        ],
    ),
)
class OrderViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Orders: placing one answers 202 at once; its saga moves it to a final state."""

    queryset = selectors.order_list()
    serializer_class = OrderOutput
    filterset_class = OrderFilter
    lookup_value_regex = UUID_PATTERN
    throttle_scope = "orders"  # placing orders (POST) is rate-limited per user: SHOP_ORDER_RATE, common/throttling.py

    def create(self, request: Request) -> Response:
        payload = OrderInput(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        key = self._idempotency_key(request)
        try:
            with (
                conflicts_as_409(services.IdempotencyConflict, code="idempotency_key_reused"),
                refusals_as_409(code="unknown_product"),
            ):
                placed = services.order_place(
                    customer_id=data["customer_id"],
                    items=[services.ItemRequest(**item) for item in data.get("items", [])],
                    amount=data.get("amount"),
                    fulfillment=data["fulfillment"],
                    idempotency_key=key,
                    request_body=request.data,
                )
        except DataError as error:
            raise Conflict("The order's total is beyond the largest amount.", code="total_too_large") from error
        # The order is placed (committed): read it back with its lines prefetched (orders are never
        # deleted, so it is there), on a new connection if the database dropped this one meanwhile:
        # the answer to a placed order is 202, whatever happens to the connection.
        order = (
            on_live_connection(lambda: selectors.order_get(order_id=placed.order.pk), attempts=AFTER_COMMIT_ATTEMPTS)
            or placed.order
        )
        headers = {"Location": request.build_absolute_uri(f"/api/orders/{order.pk}")}
        return Response(OrderOutput(order).data, status=http.HTTP_202_ACCEPTED, headers=headers)

    @extend_schema(responses=OrderStatusOutput)
    @action(detail=True, methods=["get"])
    def status(self, request: Request, pk: str) -> Response:
        return Response(OrderStatusOutput(self.get_object()).data)

    @extend_schema(
        request=None,
        responses={
            202: OrderStatusOutput,
            409: OpenApiResponse(
                ErrorOutput, f"The order cannot wait for acceptance (code order_state). {SAGA_BUSY_409}"
            ),
        },
    )
    @action(detail=True, methods=["post"], permission_classes=[requires("orders.change_order")])
    def accept(self, request: Request, pk: str) -> Response:
        """End a delivery order's wait for its courier."""
        return self._change(services.order_accept)

    @extend_schema(
        request=None,
        responses={
            202: OrderStatusOutput,
            409: OpenApiResponse(ErrorOutput, f"The order is past cancelling (code order_state). {SAGA_BUSY_409}"),
        },
    )
    @action(detail=True, methods=["post"], permission_classes=[requires("orders.change_order")])
    def cancel(self, request: Request, pk: str) -> Response:
        """Roll back a PENDING or AWAITING_ACCEPTANCE order; it ends CANCELLED."""
        return self._change(services.order_cancel)

    def _change(self, command: Callable[..., object]) -> Response:
        order = self.get_object()
        with (
            conflicts_as_409(services.OrderStateConflict, code="order_state"),
            conflicts_as_409(SagaBusy, code="saga_busy"),
        ):
            command(order_id=order.pk)
        # Done (committed): the answer is 202 even if the connection died since.
        changed = (
            on_live_connection(lambda: selectors.order_get(order_id=order.pk), attempts=AFTER_COMMIT_ATTEMPTS) or order
        )
        return Response(OrderStatusOutput(changed).data, status=http.HTTP_202_ACCEPTED)

    @staticmethod
    def _idempotency_key(request: Request) -> str | None:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return None
        if not re.fullmatch(IDEMPOTENCY_KEY_PATTERN, key):
            raise ValidationError(
                {"Idempotency-Key": f"must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters (spaces inside)."}
            )
        return Order.scoped_idempotency_key(request.user.pk, key)


class OrderSagaOutput(SagaOutput):
    """A saga as the contract shows it: its aggregate is the order."""

    aggregate_id = None  # type: ignore[assignment]  # DRF drops a parent's field set to None
    order_id = serializers.UUIDField(source="aggregate_id")


class OrderSagaFilter(api.StrictFilterSet, SagaFilter):
    aggregate_id = None  # type: ignore[assignment]  # django-filter drops a parent's filter set to None
    order_id = filters.UUIDFilter(field_name="aggregate_id")

    class Meta(SagaFilter.Meta):
        fields = ("status", "type", "order_id")


def _operated(request: type[serializers.Serializer], status: int = 202) -> Any:
    """The engine's operator actions, answering with the shop's saga shape."""
    conflict = OpenApiResponse(
        ErrorOutput,
        "The saga's state does not allow this (code saga_state), or the Idempotency-Key was used for another "
        "action (code idempotency_key_reused).",
    )
    return extend_schema(request=request, responses={status: OrderSagaOutput, 409: conflict})


@extend_schema_view(
    retry=_operated(OperatorInput),
    compensate=_operated(OperatorInput),
    rewind=_operated(RewindInput),
    resolve=_operated(OperatorInput, 200),
)
class OrderSagaViewSet(SagaViewSet):
    """Sagas with their step history (the place-order saga's aggregate is its order); operators
    retry, compensate, rewind or resolve the ones that stopped."""

    serializer_class = OrderSagaOutput
    filterset_class = OrderSagaFilter
