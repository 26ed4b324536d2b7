from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from saga.messaging import catalog, topic_for


class Command(BaseCommand):
    help = (
        "Print every message type the installed apps declare, by topic, with what its payload "
        "carries: the table the README shows (a test keeps the two equal)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--topics", action="store_true", help="print each topic role and its configured name instead"
        )

    def handle(self, *args: Any, topics: bool, **options: Any) -> None:
        if topics:
            for role in catalog.roles():
                self.stdout.write(f"{role}\t{topic_for(role)}")
            return
        self.stdout.write(catalog.table())
