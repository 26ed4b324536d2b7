"""Which Celery workers are alive, for GET /api/health. A worker vouches for itself in a Redis sorted
set per queue it consumes (member: its name; score: the time until which it vouches), first once its
event loop runs, then every BEAT_SECONDS, and withdraws when it stops consuming. A worker killed or
frozen stops vouching, and no longer counts VOUCH_SECONDS later. No Django here: the worker loads this
module with the Celery app, before Django is set up."""

import logging
import time
from typing import Any, cast

import redis
from celery import bootsteps

BEAT_SECONDS = 2.0
VOUCH_SECONDS = 3 * BEAT_SECONDS  # a late beat or two is not a dead worker
REDIS_TIMEOUT_SECONDS = 1.0  # health must answer quickly even if Redis freezes

logger = logging.getLogger(__name__)


def redis_client(url: str) -> redis.Redis:
    return redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS)


def _key(queue: str) -> str:
    return f"shop:live-workers:{queue}"


def live_workers(client: redis.Redis, queue: str) -> int:
    """How many workers of `queue` vouch for themselves now."""
    return cast(int, client.zcount(_key(queue), time.time(), "+inf"))


def _vouch(client: redis.Redis, worker: str, queues: list[str]) -> None:
    now = time.time()
    with client.pipeline() as pipe:
        for queue in queues:
            pipe.zadd(_key(queue), {worker: now + VOUCH_SECONDS})
            pipe.zremrangebyscore(_key(queue), "-inf", now)  # workers that died without a word
            pipe.expire(_key(queue), int(VOUCH_SECONDS) + 1)
        pipe.execute()


def _withdraw(client: redis.Redis, worker: str, queues: list[str]) -> None:
    with client.pipeline() as pipe:
        for queue in queues:
            pipe.zrem(_key(queue), worker)
        pipe.execute()


class Heartbeat(bootsteps.StartStopStep):
    """A step of the worker's consumer: started after it has set up its task consumer, stopped
    when it stops consuming (shutdown, or a lost broker connection, after which it starts again)."""

    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.beats: Any = None

    def start(self, consumer: Any) -> None:
        self.client = redis_client(consumer.app.conf.broker_url)
        self.worker = str(consumer.hostname)
        self.queues = sorted(queue.name for queue in consumer.task_consumer.queues)
        # The timer runs in the worker's event loop, which consumes the tasks: the first beat says "ready".
        consumer.timer.call_after(0, self.beat)
        self.beats = consumer.timer.call_repeatedly(BEAT_SECONDS, self.beat)

    def beat(self) -> None:
        try:
            _vouch(self.client, self.worker, self.queues)
        except redis.RedisError as error:
            logger.warning("worker heartbeat not written: %s", error)

    def stop(self, consumer: Any) -> None:
        if self.beats is None:
            return
        self.beats.cancel()
        self.beats = None
        try:
            _withdraw(self.client, self.worker, self.queues)
        except redis.RedisError as error:  # then it no longer counts VOUCH_SECONDS later
            logger.warning("worker heartbeat not withdrawn: %s", error)
