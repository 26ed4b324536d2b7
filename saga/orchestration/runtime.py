"""What the engine needs from the world, passed in rather than global: a clock, a way to schedule
the next look at a saga, a source of jitter, and a place to inject faults into steps."""

import random
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from types import FrameType
from typing import NoReturn, Protocol
from uuid import UUID

from django.utils import timezone

from .definition import Refusal, StepContext


class StepTimeout(Exception):
    """A step ran past its timeout."""


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return timezone.now()


class Faults(Protocol):
    def before(self, step: str, kind: str, ctx: StepContext) -> Refusal | None:
        """Called before each action or compensation runs: may raise, refuse or hang."""


class NoFaults:
    def before(self, step: str, kind: str, ctx: StepContext) -> Refusal | None:
        return None


# schedule(saga_id, delay_seconds): look at the saga again after the current transaction commits.
Schedule = Callable[[UUID, float], None]


@dataclass
class Runtime:
    schedule: Schedule
    clock: Clock = field(default_factory=SystemClock)
    faults: Faults = field(default_factory=NoFaults)
    rng: random.Random = field(default_factory=random.Random)
    # A moving saga that has not moved for this long is re-enqueued by the sweeper.
    stall_after: float = 30.0


@contextmanager
def time_limit(seconds: float | None) -> Iterator[None]:
    """Raise StepTimeout in the running step after `seconds`. Only the main thread can receive
    the alarm (a Celery prefork child runs its task there); elsewhere the limit is not enforced."""
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: FrameType | None) -> NoReturn:
        raise StepTimeout(f"step ran longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
