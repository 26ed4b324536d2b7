from typing import ClassVar

from django.db import models
from django.db.models import Q

from common.money import MoneyField
from saga.orchestration.records import ParticipantRecord

from . import messages


class Payment(ParticipantRecord):
    """The payment of one order at the provider."""

    class Status(models.TextChoices):
        AUTHORIZED = "AUTHORIZED"
        DECLINED = "DECLINED"
        VOIDED = "VOIDED"
        CAPTURED = "CAPTURED"

    EVENTS: ClassVar[dict[str, type[messages.PaymentEvent]]] = {
        Status.AUTHORIZED: messages.PaymentAuthorized,
        Status.DECLINED: messages.PaymentDeclined,
        Status.VOIDED: messages.PaymentVoided,
        Status.CAPTURED: messages.PaymentCaptured,
    }

    order_id = models.UUIDField(primary_key=True)  # one record per order
    customer_id = models.UUIDField(null=True)
    amount = MoneyField()
    status = models.CharField(max_length=10, choices=Status.choices)
    provider_reference = models.CharField(max_length=100, blank=True, default="")

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="payment_amount_not_negative")]

    def event(self) -> messages.PaymentEvent:
        return self.EVENTS[self.status](self.order_id, self.customer_id, self.amount, self.reason)

    def __str__(self) -> str:
        return f"payment {self.order_id} {self.status}"
