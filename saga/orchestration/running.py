"""The step a saga is running now, its attempt and since when: what operators see while it runs.

The careful path commits its attempt as a RUNNING row before running it. The one-transaction path
commits nothing until the step ends (that is its speed), so an attempt that runs for a moment
(MARK_AFTER) is marked in a cache every process shares (SAGA_RUNNING_CACHE: Redis in production;
the workers write, the web reads): the step, kind, attempt, start and timeout, and the saga's
`updated_at` as the attempt found it. A marker is believed only while the saga's row is unchanged
since (a step that ends commits a change to it), so it is never deleted: the saga's next marked
attempt overwrites it, and it expires a little after its step's timeout.

The step itself only notes its attempt in this process's memory; a thread of the process writes
the marker. So the cache adds nothing to a step's time, is never talked to while the step holds
its saga's row, and a cache that fails or freezes never touches a step: the thread says so once,
then leaves the cache alone for a while.

A running attempt whose step's timeout has passed is stuck: its worker died or hangs.
"""

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from django.core.cache import BaseCache, caches

from saga.core.conf import saga_settings

from .definition import DefinitionError, Step
from .models import SagaInstance, SagaStatus, SagaStep
from .registry import definitions

log = logging.getLogger(__name__)

MARK_AFTER = 0.2  # seconds an attempt runs before it is marked (a shorter one is over before a look)
KEPT_AFTER_TIMEOUT = 60.0  # seconds a marker outlives its step's timeout (it shows as stuck then)
UNTIMED_KEPT = 3600.0  # seconds a marker of a step without a timeout is kept
QUIET_AFTER_FAILURE = 30.0  # seconds the cache is left alone after it failed
MOVING = (SagaStatus.STARTED, SagaStatus.COMPENSATING)  # (a waiting saga runs nothing)


@dataclass(frozen=True)
class Running:
    step: str
    kind: str
    attempt: int
    since: datetime
    timeout: float | None  # the step's, in seconds
    stuck: bool  # it has run past its timeout


@dataclass
class _Attempt:
    """An attempt this process runs in its saga's transaction, and its marker."""

    key: str
    marker: dict[str, Any]
    kept: float  # seconds the marker is kept
    begun: float = field(default_factory=time.monotonic)
    marked: bool = False

    def write(self, cache: BaseCache) -> None:
        cache.set(self.key, self.marker, timeout=self.kept)


_under_way: dict[UUID, _Attempt] = {}  # by saga id (a process may run a few sagas in threads)


def running_started(saga: SagaInstance, *, step: Step, kind: str, since: datetime) -> None:
    """An attempt run in the saga's own transaction begins; `saga` as its lock found it."""
    marker = {
        "step": step.name,
        "kind": kind,
        "attempt": saga.attempts,
        "since": since,
        "timeout": step.timeout,
        "found": saga.updated_at,
    }
    kept = (step.timeout or UNTIMED_KEPT) + KEPT_AFTER_TIMEOUT
    _under_way[saga.id] = _Attempt(_key(saga.id), marker, kept)
    _marker_writer.start_once()


def running_ended(saga_id: UUID) -> None:
    """The attempt has returned or raised (its marker, if written, is outdated by what follows)."""
    _under_way.pop(saga_id, None)


class _MarkerWriter:
    """The thread of this process that writes the markers of attempts running for a moment."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.pid = 0

    def start_once(self) -> None:
        if self.pid == os.getpid():
            return
        with self.lock:  # (once per process: a forked worker starts its own)
            if self.pid != os.getpid():
                threading.Thread(target=self.run, name="saga-running-markers", daemon=True).start()
                self.pid = os.getpid()

    def run(self) -> None:
        while True:
            time.sleep(MARK_AFTER / 2)
            for attempt in list(_under_way.values()):
                if not attempt.marked and time.monotonic() - attempt.begun >= MARK_AFTER:
                    attempt.marked = True
                    _guarded(attempt.write)


_marker_writer = _MarkerWriter()


def running_of(sagas: Iterable[SagaInstance], now: datetime) -> dict[UUID, Running]:
    """The attempts these sagas are running, by either path, by saga id. Their steps are read
    through `saga.steps.all()` (prefetch them, or only their RUNNING rows, for many sagas)."""
    moving = [saga for saga in sagas if saga.status in MOVING]
    keys = [_key(saga.id) for saga in moving if not saga.claimed]
    markers = (_guarded(lambda cache: cache.get_many(keys)) or {}) if keys else {}
    found = {}
    for saga in moving:
        running = _claimed(saga, now) if saga.claimed else _marked(saga, markers.get(_key(saga.id)), now)
        if running is not None:
            found[saga.id] = running
    return found


def _marked(saga: SagaInstance, marker: object, now: datetime) -> Running | None:
    if not isinstance(marker, dict) or marker.get("found") != saga.updated_at:
        return None  # none, or left by an attempt that has ended (the saga's row changed since)
    return _running(marker["step"], marker["kind"], marker["attempt"], marker["since"], marker["timeout"], now)


def _claimed(saga: SagaInstance, now: datetime) -> Running | None:
    rows = [row for row in saga.steps.all() if row.status == SagaStep.Status.RUNNING]
    if not rows:
        return None
    row = max(rows, key=lambda row: row.pk)
    return _running(row.name, row.kind, row.attempt, row.started_at, _timeout_of(saga, row.name), now)


def _running(step: str, kind: str, attempt: int, since: datetime, timeout: float | None, now: datetime) -> Running:
    stuck = timeout is not None and now > since + timedelta(seconds=timeout)
    return Running(step=step, kind=kind, attempt=attempt, since=since, timeout=timeout, stuck=stuck)


def _timeout_of(saga: SagaInstance, name: str) -> float | None:
    try:
        definition = definitions.get(saga.type, saga.version)
    except DefinitionError:
        return None  # a version this code does not have: shown as running, never as stuck
    return next((step.timeout for step in definition.steps if isinstance(step, Step) and step.name == name), None)


def _key(saga_id: UUID) -> str:
    return f"saga:running:{saga_id}"


R = TypeVar("R")
_quiet_until = 0.0  # (monotonic) the cache failed: leave it alone until then


def _guarded(use: Callable[[BaseCache], R]) -> R | None:
    """`use(cache)`, or None if the cache fails (said once, then left alone for a while)."""
    global _quiet_until
    if time.monotonic() < _quiet_until:
        return None
    try:
        return use(caches[saga_settings.SAGA_RUNNING_CACHE])
    except Exception as error:  # noqa: BLE001 - the markers are for operators' eyes: never a step's failure
        log.warning(
            "the running-step markers' cache failed (%s); running steps are not shown for %d s",
            error,
            QUIET_AFTER_FAILURE,
        )
        _quiet_until = time.monotonic() + QUIET_AFTER_FAILURE
        return None
