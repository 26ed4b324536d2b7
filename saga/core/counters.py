"""What only a running process knows, counted in it: messages the relay sent and messages the
consumer took, by outcome. Everything the database knows is counted at scrape time instead
(saga/operator/metrics.py), which is right whatever the number of processes.

Every process's counts are in one scrape when PROMETHEUS_MULTIPROC_DIR names a directory all of them
share, empty when they start (prometheus-client's multiprocess mode; `make run` and `devstack exec`
set it): each process keeps its counts in a file of its own there, and /metrics adds them up.
Without it, a process's counts are only in a scrape served by that process."""

import os
import socket
from typing import Any

from celery.signals import worker_process_shutdown
from prometheus_client import Counter, multiprocess, values

HOST = socket.gethostname().replace("_", "-")  # no "_": it separates the parts of a file's name


def process_name(pid: int | None = None) -> str:
    """Names a process's files (asked at every count, to notice a fork): its host and pid, since the
    containers sharing the directory (docker-compose.yml) each number their processes from 1."""
    return f"{HOST}-{pid or os.getpid()}"


if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    # Before any metric is made: the value class is chosen when a metric is.
    values.ValueClass = values.MultiProcessValue(process_identifier=process_name)

RELAY_SENT = Counter("saga_relay_messages_sent", "Outbox messages the relay sent to Kafka.", ["topic"])
CONSUMED = Counter(
    "saga_consumer_messages",
    "Kafka messages consumed, by outcome (processed, duplicate, ignored, parked).",
    ["topic", "outcome"],
)
PROCESS_COUNTERS = (RELAY_SENT, CONSUMED)


def process_exited(pid: int) -> None:
    """What a server does when one of its processes exits (gunicorn's child_exit, Celery's pool):
    drop the process's live gauges; its counters stay, counted."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(process_name(pid))


@worker_process_shutdown.connect
def _pool_process_exited(pid: int, **kwargs: Any) -> None:
    process_exited(pid)
