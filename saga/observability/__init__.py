"""What operators see of the engine: the ids every log line carries (context.py, logs.py) and the
Prometheus metrics (metrics.py). Generic names only: saga_id, aggregate_id, step, attempt and
request_id; a project may rename aggregate_id in its own log processor (the shop says order_id)."""

from .context import bound, current_ids, current_request_id, note_saga

__all__ = ["bound", "current_ids", "current_request_id", "note_saga"]
