import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.dateparse import parse_datetime

from saga.models import OutboxMessage, SagaInstance


class Command(BaseCommand):
    help = (
        "Send outbox messages to Kafka again, with their original ids (consumers deduplicate): "
        "they are marked unsent and the running relay sends them. Only messages still kept "
        "(OUTBOX_RETENTION) can be republished."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--saga", help="messages of this saga (the saga id: their correlation_id)")
        parser.add_argument("--order", help="messages keyed by this order id")
        parser.add_argument("--since", help="messages created at or after this ISO 8601 time")
        parser.add_argument("--dry-run", action="store_true", help="list what would be sent, change nothing")

    def handle(
        self, *args: Any, saga: str | None, order: str | None, since: str | None, dry_run: bool, **options: Any
    ) -> None:
        if not (saga or order or since):
            raise CommandError("say which messages: --saga ID, --order ID and/or --since TIME")
        messages = OutboxMessage.objects.all()
        if saga:
            if not SagaInstance.objects.filter(pk=_uuid(saga)).exists():
                raise CommandError(f"no such saga: {saga}")
            messages = messages.filter(correlation_id=saga)
        if order:
            messages = messages.filter(aggregate_id=str(_uuid(order)))
        if since:
            moment = parse_datetime(since)
            if moment is None or moment.tzinfo is None:
                raise CommandError(
                    f"--since needs an ISO 8601 time with a zone, e.g. 2026-11-23T12:00:00Z, not {since!r}"
                )
            messages = messages.filter(created_at__gte=moment)
        if dry_run:
            count = 0
            for message in messages.order_by("position").iterator():
                count += 1
                self.stdout.write(
                    f"would send {message.type} to {message.topic} key {message.aggregate_id} "
                    f"(id {message.id}, saga {message.correlation_id}, created {message.created_at.isoformat()})"
                )
            self.stdout.write(f"[dry run] would republish {count} messages")
            return
        count = messages.update(sent_at=None)
        self.stdout.write(f"republishing {count} messages: the running relay sends them (watch saga_outbox_unsent)")


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise CommandError(f"not an id: {value!r}") from None
