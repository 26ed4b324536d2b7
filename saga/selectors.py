"""Queries of the saga engine."""

from datetime import datetime, timedelta
from uuid import UUID

from django.db import DEFAULT_DB_ALIAS
from django.db.models import Prefetch, Q, QuerySet
from django.utils import timezone

from saga.core.conf import saga_settings

from .messaging import relay
from .models import ACTIVE, SagaInstance, SagaStatus, SagaStep
from .orchestration.running import Running, running_of


def outbox_lag_seconds(using: str = DEFAULT_DB_ALIAS) -> float:
    """How long the oldest message still in the outbox (of the database `using`) has waited for the
    relay (0 when none)."""
    return relay.outbox_lag_seconds(using=using)


def saga_list() -> QuerySet[SagaInstance]:
    return SagaInstance.objects.prefetch_related("steps")


def saga_get(*, saga_id: UUID) -> SagaInstance | None:
    return saga_list().filter(pk=saga_id).first()


def saga_stuck_q(now: datetime | None = None) -> Q:
    """Active sagas that should have moved: past their timer or deadline, or moving (not waiting
    and not in a backoff) yet unchanged for longer than SAGA_STALL_AFTER, unless they are running
    a step that has not outlived its timeout (looked up for the first STUCK_LOOKED_AT of them).
    The sweeper re-enqueues these; one that stays here needs a look."""
    now = now or timezone.now()
    quiet_since = now - timedelta(seconds=float(saga_settings.SAGA_STALL_AFTER))
    moving = Q(status__in=[SagaStatus.STARTED, SagaStatus.COMPENSATING])
    not_backing_off = Q(retry_at__isnull=True) | Q(retry_at__lte=now)
    overdue = Q(timer_at__lte=now) | Q(deadline__lte=now) | (moving & not_backing_off & Q(updated_at__lte=quiet_since))
    stuck = Q(status__in=ACTIVE) & overdue
    running = _running_in_time(SagaInstance.objects.filter(stuck & moving).order_by("updated_at"), now)
    return stuck & ~Q(pk__in=running) if running else stuck


STUCK_LOOKED_AT = 1000  # overdue sagas whose running attempts saga_stuck_q looks up


def _running_in_time(sagas: QuerySet[SagaInstance], now: datetime) -> list[UUID]:
    running = Prefetch("steps", queryset=SagaStep.objects.filter(status=SagaStep.Status.RUNNING))
    found = running_of(sagas.prefetch_related(running)[:STUCK_LOOKED_AT], now)
    return [saga_id for saga_id, attempt in found.items() if not attempt.stuck]


def saga_running(*, saga: SagaInstance, now: datetime | None = None) -> Running | None:
    """The step the saga is running now, its attempt and since when (whichever path runs it), or
    None. Its `stuck`: it has run past the step's timeout."""
    return running_of([saga], now or timezone.now()).get(saga.id)


def saga_is_stuck(saga: SagaInstance, now: datetime | None = None, *, running: Running | None = None) -> bool:
    """`saga_stuck_q` for one saga in memory. A saga running a step (`running`, looked up if not
    given) is stuck once the step has outlived its timeout."""
    now = now or timezone.now()
    if running is not None:
        return running.stuck
    if not _overdue(saga, now):
        return False
    running = saga_running(saga=saga, now=now)
    return running is None or running.stuck


def _overdue(saga: SagaInstance, now: datetime) -> bool:
    if saga.status not in ACTIVE:
        return False
    if (saga.timer_at and saga.timer_at <= now) or (saga.deadline and saga.deadline <= now):
        return True
    quiet_since = now - timedelta(seconds=float(saga_settings.SAGA_STALL_AFTER))
    backing_off = saga.retry_at is not None and saga.retry_at > now
    return saga.status != SagaStatus.WAITING and not backing_off and saga.updated_at <= quiet_since


def saga_retrying_long_q() -> Q:
    """Moving sagas retrying one step for SAGA_LONG_RETRY_ATTEMPTS attempts or more: they need
    no operator to go on, but someone should look at what keeps failing."""
    moving = Q(status__in=[SagaStatus.STARTED, SagaStatus.COMPENSATING])
    return moving & Q(attempts__gte=int(saga_settings.SAGA_LONG_RETRY_ATTEMPTS))


def saga_needs_operator_q() -> Q:
    """FAILED sagas nobody has marked resolved."""
    return Q(status=SagaStatus.FAILED, resolved_at__isnull=True)
