"""Which sagas' doorbells still wait in the queue, so that the sweeper can tell, saga by saga, a
saga waiting its turn behind a long queue (a burst) from one whose doorbell was lost.

Each doorbell rung for now (no countdown) takes the next number of a counter kept beside the queue
in the broker's Redis, and leaves its saga a marker holding that number until a worker starts it.
Workers take doorbells in the order they were rung (one queue, first in, first out), and each one
started raises the queue's "started" number to its own. A stalled saga's doorbell is lost when:
- its saga has no marker: Redis was flushed or failed over, the enqueue failed, or a worker took
  the doorbell and then dropped it (e.g. for a definition version it does not know);
- its number is below the started one: a doorbell rung after it has started, and it has not (the
  queue was deleted, the message lost);
- the queue is empty: nothing is left to wait behind.
Doorbells held by a worker that prefetched them can look lost too: ringing one again costs only
an extra doorbell, never a wrong step."""

import logging
from functools import cache
from typing import Any
from uuid import UUID

import redis

log = logging.getLogger(__name__)

# A marker outlives any wait in a queue; one left behind (its saga long finished) expires.
MARKER_SECONDS = 24 * 3600

_RING = """
local number = redis.call('INCR', KEYS[1])
redis.call('SET', KEYS[2], number, 'EX', ARGV[1])
return number
"""

_START = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
if tonumber(ARGV[1]) > tonumber(redis.call('GET', KEYS[2]) or '0') then redis.call('SET', KEYS[2], ARGV[1]) end
"""


class Doorbells:
    """The markers of one queue's doorbells, in the broker's Redis."""

    def __init__(self, client: redis.Redis, queue: str):
        self.client, self.queue = client, queue
        self._rung_key, self._started_key = f"{queue}:doorbells:rung", f"{queue}:doorbells:started"
        self._ring, self._start = client.register_script(_RING), client.register_script(_START)

    def _marker(self, saga_id: UUID | str) -> str:
        return f"{self.queue}:doorbell:{saga_id}"

    def rung(self, saga_id: UUID) -> int:
        """Record a doorbell about to be enqueued for the saga; its number goes in the message."""
        return int(self._ring(keys=[self._rung_key, self._marker(saga_id)], args=[MARKER_SECONDS]))

    def started(self, saga_id: str, number: int) -> None:
        """A worker started the doorbell `number` of the saga."""
        self._start(keys=[self._marker(saga_id), self._started_key], args=[number])

    def lost(self, saga_ids: list[UUID]) -> list[UUID]:
        """Those of the sagas whose doorbells no longer wait in the queue."""
        if not saga_ids:
            return []
        pipe = self.client.pipeline(transaction=False)
        pipe.mget([self._marker(saga_id) for saga_id in saga_ids])
        pipe.get(self._started_key)
        pipe.llen(self.queue)
        markers, started, waiting = pipe.execute()
        if not waiting:
            return saga_ids
        passed = int(started or 0)
        pairs = zip(saga_ids, markers, strict=True)
        return [saga_id for saga_id, marker in pairs if marker is None or int(marker) < passed]


def doorbells_of(app: Any, queue: str) -> Doorbells | None:
    """The doorbells of `queue` on the Celery app's broker, or None if it is not Redis (then every
    stalled saga is rung)."""
    url = str(app.conf.broker_url)
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    return _doorbells(url, queue, tuple(sorted(_timeouts(app.conf.broker_transport_options or {}).items())))


def _timeouts(options: dict[str, Any]) -> dict[str, Any]:
    # The broker's own timeouts: a frozen Redis holds no sweep and no placing for long.
    return {name: options[name] for name in ("socket_timeout", "socket_connect_timeout") if name in options}


@cache
def _doorbells(url: str, queue: str, timeouts: tuple[tuple[str, Any], ...]) -> Doorbells:
    return Doorbells(redis.Redis.from_url(url, **dict(timeouts)), queue)
