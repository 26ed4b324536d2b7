import uuid
from typing import ClassVar

from django.db import models
from django.db.models import F, Q

from common.money import MoneyField
from saga.orchestration.records import ParticipantRecord

from . import messages


class Product(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    sku = models.CharField(max_length=64)
    name = models.CharField(max_length=200)
    price = MoneyField()
    stock = models.PositiveIntegerField(help_text="Units on hand.")
    reserved = models.PositiveIntegerField(default=0, editable=False, help_text="Units held by open orders.")
    # One more at every change of the catalogue's fields, under the row's lock, and carried in the
    # product's events: a reader keeping a copy (orders' price list) knows a late event from a new one.
    version = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        ordering = ["sku"]
        constraints = [
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_not_negative"),
            models.CheckConstraint(condition=Q(stock__gte=0), name="product_stock_not_negative"),
            models.CheckConstraint(condition=Q(reserved__gte=0), name="product_reserved_not_negative"),
            models.CheckConstraint(
                condition=Q(reserved__lte=F("stock")),
                name="product_reserved_within_stock",
                violation_error_message="stock must cover the units reserved by open orders.",
            ),
            models.UniqueConstraint(
                fields=["sku"],
                name="product_sku_unique",
                violation_error_message="A product with this sku already exists.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"

    @property
    def available(self) -> int:
        return self.stock - self.reserved


class StockReservation(ParticipantRecord):
    """The stock held for one order."""

    class Status(models.TextChoices):
        RESERVED = "RESERVED"
        REFUSED = "REFUSED"
        RELEASED = "RELEASED"
        COMMITTED = "COMMITTED"

    EVENTS: ClassVar[dict[str, type[messages.StockEvent]]] = {
        Status.RESERVED: messages.StockReserved,
        Status.REFUSED: messages.StockReservationRefused,
        Status.RELEASED: messages.StockReleased,
        Status.COMMITTED: messages.StockCommitted,
    }

    order_id = models.UUIDField(primary_key=True)  # one record per order
    status = models.CharField(max_length=10, choices=Status.choices)
    # Its lines, when the command announcing it has them at hand (saves reading them again).
    lines_at_hand: "list[StockReservationLine] | None" = None

    def event(self) -> messages.StockEvent:
        at_hand = self.lines_at_hand if self.lines_at_hand is not None else self.lines.all()
        lines = tuple(messages.Line(line.product_id, line.quantity) for line in at_hand)
        return self.EVENTS[self.status](self.order_id, lines, self.reason)

    def __str__(self) -> str:
        return f"stock reservation {self.order_id} {self.status}"


class StockReservationLine(models.Model):
    reservation = models.ForeignKey(StockReservation, on_delete=models.CASCADE, related_name="lines")
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="reservation_lines")
    quantity = models.PositiveIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["reservation", "product"], name="one_line_per_product"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="line_quantity_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.product_id}"
