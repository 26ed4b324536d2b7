from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.db.models import Count
from django.utils import timezone

from saga.models import SagaInstance, SagaStatus
from saga.selectors import saga_needs_operator_q, saga_stuck_q


class Command(BaseCommand):
    help = "Print how many sagas are in each status, and the stuck ones (active and not moving). Changes nothing."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--limit", type=int, default=20, help="stuck sagas to list (default 20)")

    def handle(self, *args: Any, limit: int, **options: Any) -> None:
        counts = dict(SagaInstance.objects.values_list("status").annotate(n=Count("id")).order_by())
        width = max(len(status) for status in SagaStatus.values)
        for status in SagaStatus.values:
            self.stdout.write(f"{status:<{width}}  {counts.get(status, 0)}")
        self.stdout.write(f"{'total':<{width}}  {sum(counts.values())}")
        failed = SagaInstance.objects.filter(saga_needs_operator_q()).count()
        self.stdout.write(f"FAILED and not resolved (need an operator): {failed}")
        stuck = SagaInstance.objects.filter(saga_stuck_q()).order_by("updated_at")
        total = stuck.count()
        self.stdout.write(f"stuck: {total}")
        now = timezone.now()
        for saga in stuck[:limit]:
            quiet = int((now - saga.updated_at).total_seconds())
            self.stdout.write(
                f"  {saga.id} {saga.type} {saga.status} at {saga.current_step or '-'} "
                f"(attempt {saga.attempts}, unchanged for {quiet}s) aggregate {saga.aggregate_id}"
            )
        if total > limit:
            self.stdout.write(f"  ... and {total - limit} more")
