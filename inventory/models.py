import uuid

from django.db import models
from django.db.models import F, Q

from common.money import MoneyField
from saga.orchestration.records import ParticipantRecord


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

    EVENTS = {
        Status.RESERVED: "stock.reserved",
        Status.REFUSED: "stock.reservation_refused",
        Status.RELEASED: "stock.released",
        Status.COMMITTED: "stock.committed",
    }

    order_id = models.UUIDField(primary_key=True)  # one record per order
    status = models.CharField(max_length=10, choices=Status.choices)
    # Its lines, when the command announcing it has them at hand (saves reading them again).
    lines_at_hand: "list[StockReservationLine] | None" = None

    def event_payload(self) -> dict:
        at_hand = self.lines_at_hand if self.lines_at_hand is not None else self.lines.all()
        lines = [{"product_id": line.product_id, "quantity": line.quantity} for line in at_hand]
        return {"order_id": self.order_id, "lines": lines}

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
