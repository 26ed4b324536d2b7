"""A Redis of a test's own, to freeze (SIGSTOP) and thaw, with Celery's producer pointed at it.
The devstack's Redis, which other tests share, is never frozen."""

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tools.devstack import services as devstack


class OwnRedis:
    def __init__(self, workdir: Path):
        workdir.mkdir(parents=True, exist_ok=True)
        self.service = devstack.redis(workdir)
        self.url = self.service.start()
        self.client = redis.Redis.from_url(self.url, socket_timeout=5)

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """SIGSTOP: its port still accepts connections, and nothing answers on them."""
        assert self.service.proc is not None
        self.service.proc.send_signal(signal.SIGSTOP)
        try:
            yield
        finally:
            self.service.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        assert self.service.proc is not None
        self.service.proc.send_signal(signal.SIGCONT)
        self.service.stop()


@contextmanager
def celery_broker(url: str) -> Iterator[None]:
    """Celery's producer (and every pool of broker connections) uses `url` inside the block. The
    shop's app is made current here: in a test process other apps may have become the current or
    default one (a thread of the test's own would ring through Celery's bare default app)."""
    from shop.celery import app

    app.set_current()
    app.set_default()
    key = "CELERY_BROKER_URL"  # the name the project's settings give it (namespace CELERY)
    previous = app.conf[key]
    app.conf[key] = url
    app._after_fork()  # forget the pools of connections to the previous broker
    try:
        yield
    finally:
        app.conf[key] = previous
        app._after_fork()
