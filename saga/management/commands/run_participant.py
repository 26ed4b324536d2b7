import logging

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from saga.inbox import Consumer
from saga.management.stopping import stop_on_signals
from saga.outbox import topic_for
from saga.participants import command_handlers, participants


class Command(BaseCommand):
    help = (
        "Serve a participant's commands from Kafka (its <context>_commands topic) and reply on its "
        "events topic, so the context runs in a process of its own. Each command is acted on once "
        "(inbox); the replies go out through the outbox, so run relay_outbox too. Set "
        "SAGA_REMOTE_PARTICIPANTS=NAME for the orchestrator (worker, consume_events)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("participant", help="the participant to serve, e.g. payments")

    def handle(self, *args, participant: str, **options) -> None:
        try:
            served = participants.get(participant)
        except LookupError as error:
            raise CommandError(str(error)) from error
        logging.getLogger("saga.inbox").setLevel(logging.INFO)
        stop = stop_on_signals()
        topic = topic_for(served.context, "commands")
        consumer = Consumer(topics=[topic], using=command_handlers(served),
                            group_id=f"{settings.KAFKA_CONSUMER_GROUP}-{served.name}", stop=stop)
        self.stdout.write(f"run_participant: serving {served.name} from {topic}")
        consumer.run()
        self.stdout.write(f"run_participant: stopped {consumer.counts}")
