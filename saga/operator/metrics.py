"""Prometheus metrics at `/metrics` (route `metrics_view` in the project's URLs).

Facts the database holds are counted from it at scrape time, so they are right across any number
of web and worker processes: sagas by type and status, step attempts and durations by step and
outcome, the outbox's backlog and lag, dead letters, stuck sagas. The relay's and the consumer's
counters are kept in their processes (saga/core/counters.py).

Reading it needs a user with the permission `saga.view_sagainstance`, known by the project's API
authentication (a DRF token, a session), or the bearer token of the setting SAGA_METRICS_TOKEN (for
Prometheus)."""

import hmac
import os
from collections.abc import Iterator
from datetime import timedelta

from django.contrib.auth.models import AnonymousUser
from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Min, Q, Sum
from django.http import HttpResponse
from django.utils import timezone
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView

from saga.core import counters
from saga.core.conf import saga_settings
from saga.messaging.models import DeadLetter, OutboxMessage
from saga.models import ACTIVE, TERMINAL, SagaInstance, SagaStep
from saga.operator.permissions import requires
from saga.selectors import saga_needs_operator_q, saga_retrying_long_q, saga_stuck_q

SCRAPER = "metrics-token"  # request.auth of a scrape with SAGA_METRICS_TOKEN
STEP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class DatabaseCollector(Collector):
    def collect(self) -> Iterator[Metric]:
        yield from _sagas()
        yield from _steps()
        yield from _outbox()
        yield from _dead_letters()


def _sagas() -> Iterator[Metric]:
    started = CounterMetricFamily("saga_sagas_started", "Sagas started, by type.", labels=["type"])
    ended = CounterMetricFamily(
        "saga_sagas_ended",
        "Sagas that ended, by type and status (COMPLETED, COMPENSATED, FAILED).",
        labels=["type", "status"],
    )
    active = GaugeMetricFamily(
        "saga_sagas_active",
        "Sagas under way, by type and status (STARTED, WAITING, COMPENSATING).",
        labels=["type", "status"],
    )
    by_type: dict[str, int] = {}
    rows = SagaInstance.objects.values_list("type", "status").annotate(n=Count("id")).order_by()
    for type, status, n in rows:
        by_type[type] = by_type.get(type, 0) + n
        if status in TERMINAL:
            ended.add_metric([type, status], n)
        elif status in ACTIVE:
            active.add_metric([type, status], n)
    for type, n in sorted(by_type.items()):
        started.add_metric([type], n)
    yield started
    yield ended
    yield active
    yield GaugeMetricFamily(
        "saga_sagas_stuck",
        "Active sagas that should have moved (SAGA_STALL_AFTER, timer or deadline passed).",
        value=SagaInstance.objects.filter(saga_stuck_q()).count(),
    )
    yield GaugeMetricFamily(
        "saga_sagas_retrying_long",
        "Moving sagas retrying one step SAGA_LONG_RETRY_ATTEMPTS times or more (an alert, not a failure).",
        value=SagaInstance.objects.filter(saga_retrying_long_q()).count(),
    )
    yield GaugeMetricFamily(
        "saga_sagas_needing_operator",
        "FAILED sagas nobody has marked resolved.",
        value=SagaInstance.objects.filter(saga_needs_operator_q()).count(),
    )


def _steps() -> Iterator[Metric]:
    attempts = CounterMetricFamily(
        "saga_step_attempts",
        "Attempts of saga steps, by step, kind (action, compensation) and outcome.",
        labels=["step", "kind", "outcome"],
    )
    durations = HistogramMetricFamily(
        "saga_step_duration_seconds",
        "Time from an attempt's start to its outcome, by step, kind and outcome.",
        labels=["step", "kind", "outcome"],
    )
    took = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
    buckets = {f"le{i}": Count("id", filter=Q(took__lte=timedelta(seconds=b))) for i, b in enumerate(STEP_BUCKETS)}
    rows = (
        SagaStep.objects.filter(finished_at__isnull=False)
        .annotate(took=took)
        .values("name", "kind", "status")
        .annotate(n=Count("id"), total=Sum("took"), **buckets)
        .order_by("name", "kind", "status")
    )
    for row in rows:
        labels = [row["name"], row["kind"], row["status"]]
        attempts.add_metric(labels, row["n"])
        total = row["total"].total_seconds() if row["total"] else 0.0
        cumulative = [(str(b), row[f"le{i}"]) for i, b in enumerate(STEP_BUCKETS)]
        durations.add_metric(labels, [*cumulative, ("+Inf", row["n"])], sum_value=total)
    yield attempts
    yield durations


def _outbox() -> Iterator[Metric]:
    unsent = OutboxMessage.objects.filter(sent_at__isnull=True).aggregate(n=Count("position"), oldest=Min("created_at"))
    lag = max((timezone.now() - unsent["oldest"]).total_seconds(), 0.0) if unsent["oldest"] else 0.0
    yield GaugeMetricFamily("saga_outbox_unsent", "Outbox messages not yet sent to Kafka.", value=unsent["n"])
    yield GaugeMetricFamily("saga_outbox_lag_seconds", "Age of the oldest unsent outbox message.", value=lag)
    last = OutboxMessage.objects.aggregate(sent=Max("sent_at"))["sent"]
    yield GaugeMetricFamily(
        "saga_outbox_last_sent_timestamp_seconds",
        "When the relay last sent a message (Unix time).",
        value=last.timestamp() if last else 0.0,
    )


def _dead_letters() -> Iterator[Metric]:
    letters = GaugeMetricFamily(
        "saga_dead_letters", "Messages the consumer parked, by state (open, replayed, discarded).", labels=["state"]
    )
    counts = dict(DeadLetter.objects.values_list("resolution").annotate(n=Count("id")).order_by())
    for state, resolution in (("open", ""), ("replayed", "replayed"), ("discarded", "discarded")):
        letters.add_metric([state], counts.get(resolution, 0))
    yield letters


class ProcessCountersCollector(Collector):
    """Every process's counters, added up from their files in PROMETHEUS_MULTIPROC_DIR, and declared
    before any process has counted (the files know only what was counted)."""

    def collect(self) -> Iterator[Metric]:
        declared = {metric.name: metric for counter in counters.PROCESS_COUNTERS for metric in counter.describe()}
        counted = {metric.name: metric for metric in multiprocess.MultiProcessCollector(None).collect()}
        yield from {**declared, **counted}.values()


def scrape() -> bytes:
    """The exposition: the database's facts, then this host's process counters."""
    database = CollectorRegistry(auto_describe=False)
    database.register(DatabaseCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        processes = CollectorRegistry(auto_describe=False)
        processes.register(ProcessCountersCollector())
    else:
        processes = REGISTRY
    return generate_latest(database) + generate_latest(processes)


class MetricsTokenAuthentication(BaseAuthentication):
    """Prometheus' bearer token, the setting SAGA_METRICS_TOKEN: it reads the metrics as no user."""

    def authenticate(self, request: Request) -> tuple[AnonymousUser, str] | None:
        token = str(saga_settings.SAGA_METRICS_TOKEN)
        given = get_authorization_header(request)
        if not token or not given.startswith(b"Bearer "):
            return None  # other credentials, or none: the project's authentication decides
        if not hmac.compare_digest(given, f"Bearer {token}".encode()):
            raise AuthenticationFailed("Wrong metrics token.")
        return AnonymousUser(), SCRAPER

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="metrics"'


class IsScraper(BasePermission):
    def has_permission(self, request: Request, view: APIView) -> bool:
        return request.auth == SCRAPER


class MetricsView(APIView):
    """The metrics token, or whatever the project's API takes (a DRF token, a session) from a user
    with the saga view permission (a superuser has it)."""

    permission_classes = (IsScraper | requires("saga.view_sagainstance"),)
    throttle_classes = ()
    schema = None  # Prometheus' text format, not an operation of the API

    def get_authenticators(self) -> list[BaseAuthentication]:
        return [MetricsTokenAuthentication(), *super().get_authenticators()]  # the first names the 401's challenge

    def get(self, request: Request) -> HttpResponse:
        return HttpResponse(scrape(), content_type=CONTENT_TYPE_LATEST)


metrics_view = MetricsView.as_view()
