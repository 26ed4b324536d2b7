"""gunicorn reads this file from its working directory (the Docker image's /app)."""

from typing import Any


def child_exit(server: Any, worker: Any) -> None:
    # prometheus-client's multiprocess mode (saga/observability/counters.py): a worker's end, told.
    from saga.observability.counters import process_exited

    process_exited(worker.pid)
