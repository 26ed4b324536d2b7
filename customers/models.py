import uuid
from decimal import Decimal

from django.db import models
from django.db.models import F, Q

from shop.money import ZERO, MoneyField


class Customer(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200)
    email = models.EmailField(blank=True, default="")
    balance = MoneyField(help_text="Funds the customer owns.")
    reserved = MoneyField(default=ZERO, editable=False, help_text="Held by open orders.")
    blocked = models.BooleanField(default=False, help_text="A blocked customer's payments are declined.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="customer_balance_not_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="customer_reserved_not_negative"),
            models.CheckConstraint(condition=Q(reserved__lte=F("balance")), name="customer_reserved_within_balance"),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def available(self) -> Decimal:
        return self.balance - self.reserved


class FundsHold(models.Model):
    """Funds held for one order. One row per order makes every command idempotent per order."""

    class Status(models.TextChoices):
        HELD = "HELD"
        REFUSED = "REFUSED"
        RELEASED = "RELEASED"
        CONSUMED = "CONSUMED"

    order_id = models.UUIDField(primary_key=True)
    # Null when the hold was refused because the customer does not exist.
    customer = models.ForeignKey(Customer, null=True, on_delete=models.PROTECT, related_name="holds")
    amount = MoneyField()
    status = models.CharField(max_length=10, choices=Status.choices)
    reason = models.CharField(max_length=40, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="hold_amount_not_negative")]

    def __str__(self) -> str:
        return f"funds hold {self.order_id} {self.status}"
