from django.db import models
from django.db.models import Q

from shop.money import MoneyField


class Payment(models.Model):
    """The payment of one order at the provider. One row per order makes every command idempotent."""

    class Status(models.TextChoices):
        AUTHORIZED = "AUTHORIZED"
        DECLINED = "DECLINED"
        VOIDED = "VOIDED"
        CAPTURED = "CAPTURED"

    order_id = models.UUIDField(primary_key=True)
    customer_id = models.UUIDField(null=True)
    amount = MoneyField()
    status = models.CharField(max_length=10, choices=Status.choices)
    provider_reference = models.CharField(max_length=100, blank=True, default="")
    reason = models.CharField(max_length=40, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="payment_amount_not_negative")]

    def __str__(self) -> str:
        return f"payment {self.order_id} {self.status}"
