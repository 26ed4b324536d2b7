import uuid

from django.db import models
from django.db.models import Q

from common.money import MoneyField


class Order(models.Model):
    class Status(models.TextChoices):
        PENDING = "PENDING"
        AWAITING_ACCEPTANCE = "AWAITING_ACCEPTANCE"
        CONFIRMED = "CONFIRMED"
        REJECTED = "REJECTED"
        CANCELLED = "CANCELLED"

    class Reason(models.TextChoices):
        OUT_OF_STOCK = "OUT_OF_STOCK"
        INSUFFICIENT_CREDIT = "INSUFFICIENT_CREDIT"
        PAYMENT_DECLINED = "PAYMENT_DECLINED"
        UNKNOWN_CUSTOMER = "UNKNOWN_CUSTOMER"
        ACCEPTANCE_TIMEOUT = "ACCEPTANCE_TIMEOUT"
        CANCELLED_BY_CUSTOMER = "CANCELLED_BY_CUSTOMER"
        CANCELLED_BY_OPERATOR = "CANCELLED_BY_OPERATOR"

    class Fulfillment(models.TextChoices):
        PICKUP = "pickup"
        DELIVERY = "delivery"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No foreign keys across contexts: the customer lives in the customers context.
    customer_id = models.UUIDField(db_index=True)
    total = MoneyField()
    status = models.CharField(max_length=24, choices=Status.choices, default=Status.PENDING, db_index=True)
    # Null until the order is rejected or cancelled: the API answers `"reason": null` (README, API tests).
    reason = models.CharField(max_length=24, choices=Reason.choices, null=True, blank=True)  # noqa: DJ001
    fulfillment = models.CharField(max_length=10, choices=Fulfillment.choices, default=Fulfillment.PICKUP)
    saga_id = models.UUIDField(null=True, blank=True, db_index=True)
    # "<user id>:<Idempotency-Key>" (see scoped_idempotency_key), so two users' keys never collide.
    idempotency_key = models.CharField(max_length=300, null=True, blank=True, unique=True)
    request_fingerprint = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "id"]
        constraints = [models.CheckConstraint(condition=Q(total__gte=0), name="order_total_not_negative")]

    def __str__(self) -> str:
        return f"order {self.id} {self.status}"

    @staticmethod
    def scoped_idempotency_key(user_id: object, key: str) -> str:
        return f"{user_id}:{key}"

    @property
    def client_idempotency_key(self) -> str | None:
        """The Idempotency-Key as its client sent it."""
        return self.idempotency_key.partition(":")[2] if self.idempotency_key else None


class OrderLine(models.Model):
    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines")
    product_id = models.UUIDField()
    sku = models.CharField(max_length=64)
    quantity = models.PositiveIntegerField()
    unit_price = MoneyField()

    class Meta:
        ordering = ["id"]
        constraints = [models.CheckConstraint(condition=Q(quantity__gt=0), name="order_line_quantity_positive")]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"


class ProductPrice(models.Model):
    """The orders context's own price list: inventory's products as their events told them, so
    that placing an order never reads inventory's tables when the contexts have their own
    databases (SHOP_TOPOLOGY=services). A deleted product stays as a tombstone, so that a late
    event of it cannot bring it back (inventory never reuses a product's id)."""

    product_id = models.UUIDField(primary_key=True)
    # Not unique: two products that traded a sku may be told in either order (their events have
    # different keys); a sku two live rows claim names no product until the later event comes.
    sku = models.CharField(max_length=64, db_index=True)
    price = MoneyField()
    version = models.PositiveIntegerField(help_text="The product's version its last applied event carried.")
    deleted = models.BooleanField(default=False)
    event_id = models.UUIDField(help_text="The id of the last event applied.")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["sku"]

    def __str__(self) -> str:
        return f"{self.sku} {self.price}{' (deleted)' if self.deleted else ''}"
