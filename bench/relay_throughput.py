"""Relay throughput alone: write N outbox messages, relay them to Kafka, print messages per second.

    make bench-relay                     # embedded services, 20,000 messages
    python -m bench.relay_throughput 50000

Uses a topic of its own and deletes its rows afterwards (bench/relay.py); `make bench` measures
the same among the other figures.
"""

import os
import sys

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shop.settings")
django.setup()

from bench.relay import BATCH, throughput  # noqa: E402


def main(count: int) -> None:
    rate = throughput(count)
    print(f"relay: {count} messages = {rate:,.0f} messages/s (batches of {BATCH}, acks=all, idempotent producer)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
