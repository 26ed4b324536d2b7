"""gunicorn reads this file from its working directory (the Docker image's /app)."""

from typing import Any


def child_exit(server: Any, worker: Any) -> None:
    # prometheus-client's multiprocess mode (saga/core/counters.py): a worker's end, told.
    from saga.core.counters import process_exited

    process_exited(worker.pid)
