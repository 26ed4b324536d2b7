import logging
import signal
import threading

from django.core.management.base import BaseCommand

from saga.inbox import Consumer


class Command(BaseCommand):
    help = (
        "Consume fulfillment_events (and the replies of remote participants) until SIGTERM or "
        "Ctrl-C, acting on each message once (inbox) and parking unusable ones (dead letters)."
    )

    def handle(self, *args, **options) -> None:
        logging.getLogger("saga.inbox").setLevel(logging.INFO)
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        consumer = Consumer(stop=stop)
        self.stdout.write(f"consume_events: reading {', '.join(consumer.topics)}")
        consumer.run()
        self.stdout.write(f"consume_events: stopped {consumer.counts}")
