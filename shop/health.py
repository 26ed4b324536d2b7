"""GET /api/health: is every part the shop needs reachable, and does a Celery worker consume its queue?
Each probe gives up within a second or two, so health answers quickly even when a part hangs."""

from collections.abc import Callable

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections
from drf_spectacular.utils import extend_schema
from kafka import KafkaAdminClient
from rest_framework.decorators import api_view, authentication_classes, permission_classes
from rest_framework.request import Request
from rest_framework.response import Response

from saga.selectors import outbox_lag_seconds

from .worker_heartbeat import VOUCH_SECONDS, live_workers, redis_client

PROBE_TIMEOUT_SECONDS = 2


def _database(alias: str) -> Callable[[], None]:
    def check() -> None:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT 1")

    return check


def _databases() -> dict[str, Callable[[], None]]:
    """A probe per database this process reaches: `database` (its own), and in the gateway of the
    services topology `database_customers` etc. (docs/topology.md)."""
    return {"database" if alias == DEFAULT_DB_ALIAS else f"database_{alias}": _database(alias) for alias in connections}


class NoLiveWorker(Exception):
    pass


def _broker() -> None:
    with redis_client(settings.CELERY_BROKER_URL) as client:
        client.ping()


def _worker() -> None:
    queue = settings.CELERY_TASK_DEFAULT_QUEUE
    with redis_client(settings.CELERY_BROKER_URL) as client:
        if not live_workers(client, queue):
            raise NoLiveWorker(f"no live worker consumes the queue {queue!r} (none vouched in {VOUCH_SECONDS:.0f} s)")


def _kafka() -> None:
    admin = KafkaAdminClient(
        bootstrap_servers=settings.KAFKA_BOOTSTRAP_SERVERS,
        request_timeout_ms=PROBE_TIMEOUT_SECONDS * 1000,
        bootstrap_timeout_ms=PROBE_TIMEOUT_SECONDS * 1000,
    )
    try:
        admin.list_topics()
    finally:
        admin.close()


PROBES: dict[str, Callable[[], None]] = {"broker": _broker, "kafka": _kafka, "worker": _worker}


def _probe(check: Callable[[], None]) -> str:
    try:
        check()
    except Exception as error:  # noqa: BLE001 - any failure means "down", named in the answer
        return f"error: {type(error).__name__}: {error}"[:300]
    return "ok"


def _outbox_lag() -> float | None:
    """The oldest unsent message's age, over every outbox this process reaches (each database has
    its own, and its own relay)."""
    try:
        return round(max(outbox_lag_seconds(using=alias) for alias in connections), 3)
    except Exception:  # noqa: BLE001 - the database probe names the failure
        return None


@extend_schema(responses={200: dict, 503: dict}, auth=[])
@api_view(["GET"])
@authentication_classes([])
@permission_classes([])
def health(request: Request) -> Response:
    parts = {name: _probe(check) for name, check in {**_databases(), **PROBES}.items()}
    lag = _outbox_lag()
    lagging = lag is not None and lag > settings.OUTBOX_LAG_DEGRADED_SECONDS
    healthy = all(state == "ok" for state in parts.values()) and not lagging
    body = {"status": "ok" if healthy else "degraded", **parts, "outbox_lag_seconds": lag}
    if lagging:
        body["outbox"] = f"error: oldest unsent message is {lag:.0f} s old"
    return Response(body, status=200 if healthy else 503)
