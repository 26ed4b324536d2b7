"""The toy participant's own tables: toys in stock, and the reservation each order holds."""

from django.db import models


class Toy(models.Model):
    sku = models.CharField(max_length=20, primary_key=True)
    stock = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.sku} ({self.stock})"


class Reservation(models.Model):
    class Status(models.TextChoices):
        RESERVED = "RESERVED"
        RELEASED = "RELEASED"
        SHIPPED = "SHIPPED"

    order_id = models.UUIDField(primary_key=True)
    toy = models.ForeignKey(Toy, on_delete=models.PROTECT)
    quantity = models.PositiveIntegerField()
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.RESERVED)

    def __str__(self) -> str:
        return f"{self.quantity} {self.toy_id} for {self.order_id}: {self.status}"
