import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from saga.management.stopping import stop_on_signals
from saga.messaging.relay import Relay


class Command(BaseCommand):
    help = (
        "Relay the transactional outbox to Kafka until SIGTERM or Ctrl-C. Run as many as you like: "
        "one is active (a PostgreSQL advisory lock), the others wait to take over."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=500, help="messages per batch (default 500)")
        parser.add_argument(
            "--poll-interval", type=float, default=1.0, help="seconds between polls when no NOTIFY arrives (default 1)"
        )

    def handle(self, *args: Any, batch_size: int, poll_interval: float, **options: Any) -> None:
        if batch_size < 1 or poll_interval <= 0:
            raise CommandError("--batch-size must be at least 1 and --poll-interval above 0")
        logging.getLogger("saga.messaging.relay").setLevel(logging.INFO)
        stop = stop_on_signals()
        relay = Relay(batch_size=batch_size, poll_interval=poll_interval, stop=stop)
        self.stdout.write("relay_outbox: starting (standby until it holds the relay lock)")
        relay.run()
        self.stdout.write(f"relay_outbox: stopped after sending {relay.sent_total} messages")
