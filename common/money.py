"""Money: Decimal with two places, never float."""

from decimal import Decimal
from typing import Any

from django.db import models

MAX_DIGITS = 12
PLACES = 2
ZERO = Decimal("0.00")


def MoneyField(**kwargs: Any) -> models.DecimalField:  # noqa: N802 - reads like a field class
    return models.DecimalField(max_digits=MAX_DIGITS, decimal_places=PLACES, **kwargs)
