import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from saga.core.conf import saga_settings
from saga.management.stopping import stop_on_signals
from saga.messaging import topic_for
from saga.messaging.inbox import Consumer
from saga.orchestration.participants import command_handlers, participants


class Command(BaseCommand):
    help = (
        "Serve a participant's commands from Kafka (its <context>_commands topic) and reply on its "
        "events topic, so the context runs in a process of its own. Each command is acted on once "
        "(inbox); the replies go out through the outbox, so run relay_outbox too. Set "
        "SAGA_REMOTE_PARTICIPANTS=NAME for the orchestrator (worker, consume_events)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("participant", help="the participant to serve, e.g. payments")

    def handle(self, *args: Any, participant: str, **options: Any) -> None:
        try:
            served = participants.get(participant)
        except LookupError as error:
            raise CommandError(str(error)) from error
        logging.getLogger("saga.messaging.inbox").setLevel(logging.INFO)
        stop = stop_on_signals()
        topic = topic_for(f"{served.context}_commands")
        consumer = Consumer(
            topics=[topic],
            using=command_handlers(served),
            group_id=f"{saga_settings.KAFKA_CONSUMER_GROUP}-{served.name}",
            stop=stop,
        )
        self.stdout.write(f"run_participant: serving {served.name} from {topic}")
        consumer.run()
        self.stdout.write(f"run_participant: stopped {consumer.counts}")
