import uuid
from decimal import Decimal
from typing import ClassVar

from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower

from common.money import ZERO, MoneyField
from saga.orchestration.records import ParticipantRecord

from . import messages


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
            models.CheckConstraint(
                condition=Q(balance__gte=0),
                name="customer_balance_not_negative",
                violation_error_message="balance must not be negative.",
            ),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="customer_reserved_not_negative"),
            models.CheckConstraint(
                condition=Q(reserved__lte=F("balance")),
                name="customer_reserved_within_balance",
                violation_error_message="balance must cover the funds held by open orders.",
            ),
            # One customer per email, whatever its case; any number of customers without one.
            models.UniqueConstraint(
                Lower("email"),
                condition=~Q(email=""),
                name="customer_email_unique",
                violation_error_message="A customer with this email already exists.",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def available(self) -> Decimal:
        return self.balance - self.reserved


class FundsHold(ParticipantRecord):
    """Funds held for one order."""

    class Status(models.TextChoices):
        HELD = "HELD"
        REFUSED = "REFUSED"
        RELEASED = "RELEASED"
        CONSUMED = "CONSUMED"

    EVENTS: ClassVar[dict[str, type[messages.FundsEvent]]] = {
        Status.HELD: messages.FundsHeld,
        Status.REFUSED: messages.FundsHoldRefused,
        Status.RELEASED: messages.FundsReleased,
        Status.CONSUMED: messages.FundsConsumed,
    }

    order_id = models.UUIDField(primary_key=True)  # one record per order
    # Null when the hold was refused because the customer does not exist.
    customer = models.ForeignKey(Customer, null=True, on_delete=models.PROTECT, related_name="holds")
    amount = MoneyField()
    status = models.CharField(max_length=10, choices=Status.choices)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="hold_amount_not_negative")]

    def event(self) -> messages.FundsEvent:
        return self.EVENTS[self.status](self.order_id, self.customer_id, self.amount, self.reason)

    def __str__(self) -> str:
        return f"funds hold {self.order_id} {self.status}"
