"""Claiming an attempt, the first transaction of a saga moved with care: its attempt row written
as RUNNING, for the process that runs it in a second transaction. A RUNNING row found here is an
attempt interrupted: taken over when its worker lives on (only its connection died), counted as
a crash when it is gone."""

import logging
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta

from saga.core.ids import note_saga

from ..definition import RetryPolicy, SagaDefinition, Step
from ..models import SagaInstance, SagaStep
from ..runtime import Runtime
from .history import record
from .row import save
from .transitions import back_off, give_up

log = logging.getLogger(__package__)  # one logger for the engine, whichever module writes

MAX_CRASHES = 5  # workers that may die in one step before the saga stops for an operator


@dataclass(frozen=True)
class Claim:
    row_id: int
    status: str
    direction: str
    step_index: int


def claim_attempt(
    saga: SagaInstance, definition: SagaDefinition, step: Step, kind: str, policy: RetryPolicy, runtime: Runtime
) -> Claim | bool:
    now = runtime.clock.now()
    running = saga.steps.filter(name=step.name, kind=kind, status=SagaStep.Status.RUNNING)
    interrupted = running.order_by("-id").first()
    if interrupted is not None and _worker_lives_on(interrupted):
        return _take_over(saga, interrupted, now, runtime)
    saga.claimed = False
    if running.update(status=SagaStep.Status.CRASHED, finished_at=now, error="its worker died during this attempt"):
        log.warning("%s %s attempt %d: CRASHED: its worker died during it", kind, step.name, saga.attempts)
        # Back off like after an error, and give up on a step that keeps killing its workers
        # even where the policy retries for ever: redelivery must not become a crash loop.
        saga.crashes += 1
        if policy.exhausted(saga.attempts) or saga.crashes >= MAX_CRASHES:
            return give_up(saga, definition, step, kind, f"{step.name}: its worker died {saga.crashes} times", runtime)
        saga.error = f"{step.name}: its worker died during attempt {saga.attempts}"
        back_off(saga, policy.backoff(saga.attempts, runtime.rng), runtime)
        return False
    saga.attempts += 1
    saga.retry_at = None
    # If the sweeper finds it still here, the advancer is dead or slow; a live one keeps its
    # advisory lock, so the extra doorbell is harmless.
    saga.wake_at = now + timedelta(seconds=runtime.stall_after)
    saga.claimed = True
    save(saga)
    note_saga(saga)
    row = record(saga, step.name, kind, SagaStep.Status.RUNNING, now, finished=False, worker=_worker())
    return Claim(row_id=row.pk, status=saga.status, direction=saga.direction, step_index=saga.step_index)


# Claimed attempts this process was running when its database connection died.
_interrupted: set[int] = set()
_HOST = socket.gethostname()


def _worker() -> str:
    return f"{_HOST}:{os.getpid()}"  # read each time: pool processes fork after import


def _worker_lives_on(row: SagaStep) -> bool:
    """Did the attempt's worker lose only its connection (a failover, a restart, a terminated
    backend), not its life? Known for this process, and for a process of this host (alive or
    not); a process of another host cannot be seen from here, and its claim counts as a crash."""
    if row.pk in _interrupted:
        return True
    host, _, pid = row.worker.rpartition(":")
    if host != _HOST or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, another user's
    return True


def connection_lost_during(claim: Claim) -> None:
    """The run of `claim` lost its database connection, and its transaction with it: this
    process, on a new connection, takes the attempt over at its next claim."""
    _interrupted.add(claim.row_id)


def _take_over(saga: SagaInstance, row: SagaStep, now: datetime, runtime: Runtime) -> Claim:
    """Run an attempt interrupted by a lost connection again, as the same attempt: no crash
    counted, no attempt added (its transaction died, so nothing of it was committed)."""
    _interrupted.discard(row.pk)
    log.warning("%s %s attempt %d lost its database connection; running it again", row.kind, row.name, row.attempt)
    saga.claimed = True
    saga.wake_at = now + timedelta(seconds=runtime.stall_after)
    save(saga)
    SagaStep.objects.filter(pk=row.pk).update(worker=_worker())
    return Claim(row_id=row.pk, status=saga.status, direction=saga.direction, step_index=saga.step_index)
