from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from inventory import services


class Command(BaseCommand):
    help = (
        "Announce every product's current state again on inventory_events (product.updated with its "
        "current version, new message ids, through the outbox: run relay_outbox), so that orders' "
        "price list (SHOP_TOPOLOGY=services) fills on a new orders database. Safe to run twice: the "
        "price list keeps the newest version of each product and ignores the rest. Unlike "
        "republish_events it does not depend on the outbox still keeping the products' first events."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=500, help="products per transaction (default 500)")

    def handle(self, *args: Any, batch: int, **options: Any) -> None:
        if batch < 1:
            raise CommandError(f"--batch must be at least 1, not {batch}")
        announced, last = 0, None
        while products := services.products_announce(after=last, limit=batch):
            announced, last = announced + len(products), products[-1].pk
            self.stdout.write(f"announced {announced} products")
        self.stdout.write(f"done: {announced} products announced; the relay sends them, orders' consumer keeps them")
