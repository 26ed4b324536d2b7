import logging
from typing import Any

from django.core.management.base import BaseCommand

from saga.core.conf import saga_settings
from saga.management.stopping import stop_on_signals
from saga.messaging.inbox import Consumer
from saga.services import inbound


class Command(BaseCommand):
    help = (
        "Consume the inbound topics (those of the message handlers the apps registered) and the "
        "replies of remote participants until SIGTERM or "
        "Ctrl-C, acting on each message once (inbox) and parking unusable ones (dead letters)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        logging.getLogger("saga.messaging.inbox").setLevel(logging.INFO)
        stop = stop_on_signals()
        topics, lenient, handlers = inbound()
        consumer = Consumer(
            topics=topics,
            using=handlers,
            lenient_topics=lenient,
            group_id=saga_settings.KAFKA_CONSUMER_GROUP,
            stop=stop,
        )
        self.stdout.write(f"consume_events: reading {', '.join(topics)}")
        consumer.run()
        self.stdout.write(f"consume_events: stopped {consumer.counts}")
