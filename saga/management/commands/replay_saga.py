import uuid
from typing import Any, TextIO, cast

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from saga import services
from saga.models import SagaInstance, SagaStatus


class Command(BaseCommand):
    help = (
        "Re-drive sagas in this process, safely: finished sagas are left as they are, and "
        "participants are idempotent, so a step that already happened changes nothing. Each replay "
        "is audited like the admin's actions, with --comment saying why."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("saga_ids", nargs="*", help="ids of the sagas to replay")
        parser.add_argument("--from-step", help="run the saga forward again from this step")
        parser.add_argument("--status", choices=SagaStatus.values, help="with --all: the sagas in this status")
        parser.add_argument("--all", dest="every", action="store_true", help="replay every saga in --status")
        parser.add_argument("--dry-run", action="store_true", help="show what would happen, change nothing")
        parser.add_argument("--comment", default="", help="why (required unless --dry-run): kept in the audit trail")

    def handle(
        self,
        *args: Any,
        saga_ids: list[str],
        from_step: str | None,
        status: str | None,
        every: bool,
        dry_run: bool,
        comment: str,
        **options: Any,
    ) -> None:
        if not dry_run and not comment.strip():
            raise CommandError(f"--comment is required: {services.COMMENT_REQUIRED}")
        ids = self._select(saga_ids, status, every)
        if not ids:
            self.stdout.write("no saga to replay")
            return
        failures: list[str] = []
        outcomes: dict[str, int] = {}
        untouched = 0
        prefix = "[dry run] " if dry_run else ""
        # A progress bar on a terminal, for long runs; the lines below are the record. Drawn on the
        # raw stream: Django's stderr would paint it as an error and end each redraw with a newline.
        raw = cast(TextIO, self.stderr._out)  # typed as a callable by django-stubs' __getattr__
        progress = tqdm(ids, desc="replaying", unit="saga", file=raw, disable=None, leave=False)
        for number, saga_id in enumerate(progress, start=1):
            try:
                plan = services.saga_replay(saga_id=saga_id, from_step=from_step, dry_run=dry_run, comment=comment)
            except (services.DefinitionError, services.SagaStateConflict) as error:
                failures.append(f"saga {saga_id}: {error}")
                self.stderr.write(f"{prefix}[{number}/{len(ids)}] saga {saga_id}: {error}")
                continue
            status = SagaInstance.objects.get(pk=saga_id).status
            outcomes[status] = outcomes.get(status, 0) + 1
            untouched += plan.action == "nothing"
            after = "" if dry_run else f" -> now {status}"
            self.stdout.write(f"{prefix}[{number}/{len(ids)}] saga {saga_id}: {plan.description}{after}")
        now = ", ".join(f"{n} {status}" for status, n in sorted(outcomes.items())) or "none"
        verb = "would replay" if dry_run else "replayed"
        replayed = len(ids) - len(failures) - untouched
        self.stdout.write(
            f"{prefix}{verb} {replayed} of {len(ids)} sagas ({now}); {untouched} with nothing to do; "
            f"{len(failures)} failed"
        )
        if failures:
            raise CommandError(f"{len(failures)} of {len(ids)} sagas could not be replayed: {'; '.join(failures)}")

    @staticmethod
    def _select(saga_ids: list[str], status: str | None, every: bool) -> list[uuid.UUID]:
        if every == bool(saga_ids):
            raise CommandError("give saga ids, or --status STATUS --all")
        if every:
            if not status:
                raise CommandError("--all needs --status")
            return list(SagaInstance.objects.filter(status=status).order_by("created_at").values_list("id", flat=True))
        try:
            ids = [uuid.UUID(value) for value in saga_ids]
        except ValueError as error:
            raise CommandError(f"not a saga id: {error}") from error
        missing = set(ids) - set(SagaInstance.objects.filter(pk__in=ids).values_list("id", flat=True))
        if missing:
            raise CommandError(f"no such saga: {', '.join(map(str, sorted(missing)))}")
        return ids
