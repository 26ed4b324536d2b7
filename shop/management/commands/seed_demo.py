from contextlib import ExitStack
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import connections, transaction
from rest_framework.authtoken.models import Token

from customers import selectors as customer_selectors
from customers import services as customer_services
from inventory import selectors as inventory_selectors
from inventory import services as inventory_services

DEMO_USER = "demo"
DEMO_PASSWORD = "demo"
CUSTOMERS = [
    # name, email, balance, blocked
    ("Ada Lovelace", "ada@example.com", Decimal("500.00"), False),
    ("Brian Kernighan", "brian@example.com", Decimal("50.00"), False),
    ("Carol Blocked", "carol@example.com", Decimal("1000.00"), True),
]
PRODUCTS = [
    # sku, name, price, stock
    ("WIDGET", "Widget", Decimal("25.00"), 100),
    ("GADGET", "Gadget", Decimal("120.00"), 10),
    ("LAST-ONE", "The last one", Decimal("10.00"), 1),
]


class Command(BaseCommand):
    help = "Create the demo user (with an API token), customers and products. Safe to run twice."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="show what would be created, change nothing")

    def handle(self, *args: Any, dry_run: bool = False, **options: Any) -> None:
        # One transaction in each database (in the services topology, customers and products are in
        # databases of their own): a dry run rolls back all of them, and the events announced too.
        with ExitStack() as transactions:
            for alias in connections:
                transactions.enter_context(transaction.atomic(using=alias))
            self._seed(dry_run=dry_run)

    def _seed(self, *, dry_run: bool) -> None:
        prefix, verb = ("[dry run] would create ", "would create") if dry_run else ("", "created")
        token = self._demo_user()
        customers = products = 0
        for name, email, balance, blocked in CUSTOMERS:
            if not customer_selectors.customer_list().filter(email__iexact=email).exists():
                customer_services.customer_create(name=name, email=email, balance=balance, blocked=blocked)
                customers += 1
                self.stdout.write(f"{prefix}customer {name}: balance {balance}{' (blocked)' if blocked else ''}")
        existing = inventory_selectors.products_by_skus(skus={sku for sku, *_ in PRODUCTS})
        for sku, name, price, stock in PRODUCTS:
            if sku not in existing:
                inventory_services.product_create(sku=sku, name=name, price=price, stock=stock)
                products += 1
                self.stdout.write(f"{prefix}product {sku}: {stock} at {price}")
        self.stdout.write(f"{verb} {customers} customers and {products} products")
        if dry_run:
            for alias in connections:
                transaction.set_rollback(True, using=alias)  # the events they announced go too: nothing is sent
            return
        self.stdout.write(f"Demo user: {DEMO_USER} / {DEMO_PASSWORD}")
        self.stdout.write(f"Demo API token: {token}")

    @staticmethod
    def _demo_user() -> str:
        user, created = get_user_model().objects.get_or_create(
            username=DEMO_USER, defaults={"is_staff": True, "is_superuser": True}
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save()
        return Token.objects.get_or_create(user=user)[0].key
