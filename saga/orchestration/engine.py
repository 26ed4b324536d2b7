"""Execution of sagas: one step at a time, each attempt in one transaction, or two after a crash.

Normally a step is one transaction: lock the saga row, decide the next step, run its action or
compensation, record the attempt and move the saga, commit. A local participant's changes commit
together with the saga's progress; a worker that dies mid-step leaves nothing behind, and its
doorbell comes back marked redelivered (acks late, rejected when the worker is lost).

A saga suspected of killing its workers (a redelivered doorbell, a crash already counted, an
attempt claimed and not finished) is moved with care, in two transactions per attempt:
1. Claim: lock the saga row, decide the next step, write its attempt row as RUNNING (with the
   claiming process), commit. A RUNNING row found here was left by a worker whose connection died
   mid-step (only one careful process advances a saga at a time, by a session advisory lock that
   dies with its connection). If that worker lives on (this very process after a failover, or a
   live process of this host), the attempt is taken over and run again, counted once. If it is
   gone, the row is marked CRASHED and counts as a failed attempt: a step that kills its worker
   cannot loop for ever.
2. Run: lock the saga row again, check nothing redirected it meanwhile (a cancel, an operator),
   run the action or compensation, record the outcome and move the saga, commit.
A step that fails rolls back with its transaction; its failure is recorded in the next one.

Everything is decided from the database; a Celery message only says "look at saga X now".
"""

import copy
import functools
import logging
import os
import socket
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar
from uuid import UUID, uuid4

from django.db import DatabaseError, OperationalError, connection, transaction
from django.db.models import Q

from saga.core.conf import saga_settings
from saga.core.connections import connection_error_lost, connection_lost, lock_not_available
from saga.core.ids import bound, current_request_id, note_saga
from saga.core.rows import rows_insert, rows_update

from ..messaging import caused_by, publish, published_together
from . import participants
from .definition import (
    AnyStep,
    DefinitionError,
    Refusal,
    RetryPolicy,
    SagaDefinition,
    Step,
    StepContext,
    StepKind,
    Wait,
)
from .models import ACTIVE, TERMINAL, Direction, SagaInstance, SagaStatus, SagaStep
from .registry import definitions
from .running import running_ended, running_started
from .runtime import Runtime, StepTimeout, time_limit

log = logging.getLogger(__name__)

EVENTS_KEY = "_events"  # events that arrived before their wait step, kept in the saga's data
REACHED_KEY = "_reached"  # the furthest step a rewound saga had reached, kept in its data
MAX_CRASHES = 5  # workers that may die in one step before the saga stops for an operator
MAX_HOOK_FAILURES = 5  # failures of a definition's hooks before the saga stops for an operator
HOOK_RETRY = RetryPolicy(initial_backoff=1.0, max_backoff=60.0)
DEFAULT_REPLY_TIMEOUT = 30.0  # seconds a step without a timeout waits for a remote reply

P = ParamSpec("P")
R = TypeVar("R")


def _log_scope(function: Callable[P, R]) -> Callable[P, R]:
    """Log lines inside carry the ids of the saga being handled (set whenever its row is locked),
    and none of them leak to what the caller does next."""

    @functools.wraps(function)
    def scoped(*args: P.args, **kwargs: P.kwargs) -> R:
        with bound():
            return function(*args, **kwargs)

    return scoped


class SagaStateConflict(Exception):
    """The saga's state does not allow the requested action."""


class SagaBusy(OperationalError):
    """Another session held the saga's row past SAGA_LOCK_TIMEOUT (a long step, or a vanished
    worker's session the server has not ended yet): nothing was done, try again shortly. A
    database error, as the lock timeout under it is: a consumer gets its message again."""


@dataclass(frozen=True)
class Claim:
    row_id: int
    status: str
    direction: str
    step_index: int


class _NeedsCare(Exception):
    """The saga must be moved with care (claim, then run): raised before anything is done."""


@dataclass(frozen=True)
class _Position:
    """Where a saga stands, as a lock found it: if it is the same in the next transaction,
    nothing happened to the saga in between."""

    status: str
    direction: str
    step_index: int
    attempts: int

    @classmethod
    def of(cls, saga: SagaInstance) -> "_Position":
        return cls(saga.status, saga.direction, saga.step_index, saga.attempts)

    def same_step(self, saga: SagaInstance) -> bool:
        """Is the saga at the same step, in the same direction, whatever its attempts?"""
        return (self.status, self.direction, self.step_index) == (saga.status, saga.direction, saga.step_index)


class _StepFailed(Exception):
    """A step run in the saga's own transaction raised: the transaction rolls back, and the
    failure is recorded in the next one if the saga is still where it was."""

    def __init__(self, found: _Position, step_index: int, kind: str, started_at: datetime, error: Exception):
        super().__init__(str(error))
        self.found, self.step_index, self.kind, self.started_at, self.error = found, step_index, kind, started_at, error


def start(
    definition: SagaDefinition, *, aggregate_id: UUID, data: dict, runtime: Runtime, request_id: UUID | None = None
) -> SagaInstance:
    """Create the saga in the caller's transaction; it starts moving once that commits. Its
    request id is `request_id`, or that of the HTTP request being served, or else its own id.
    The caller's log lines carry the saga's ids from here on."""
    definitions.checked(definition)  # its steps are those its version has always had
    now = runtime.clock.now()
    saga_id = uuid4()
    serving = current_request_id()
    saga = SagaInstance(
        id=saga_id,
        type=definition.name,
        version=definition.version,
        aggregate_id=aggregate_id,
        # The column keeps its historical name; it holds the request id (the API says request_id).
        correlation_id=request_id or (UUID(serving) if serving else saga_id),
        data=data,
        current_step=definition.steps[0].name,
        wake_at=now + timedelta(seconds=runtime.stall_after),
    )
    if definition.deadline is not None:
        saga.deadline = now + timedelta(seconds=definition.deadline(_context(saga, definition, now)))
    saga.save(force_insert=True)
    note_saga(saga)
    log.info("saga %s v%s started", saga.type, saga.version)
    _announce(saga, "saga.started", version=saga.version)
    runtime.schedule(saga.id, 0)
    return saga


@_log_scope
def advance(saga_id: UUID, runtime: Runtime, *, suspect: bool = False) -> None:
    """Move the saga as far as it can go now: through every step, stopping at a wait, a backoff
    or its end. `suspect`: the doorbell came back from a worker that died (maybe in this saga's
    step), so the saga is moved with care."""
    if not suspect:
        try:
            with caused_by(saga_id, None):
                while _advance_at_once(saga_id, runtime):
                    pass
            return
        except _NeedsCare:
            pass  # nothing was done: the transaction that found out rolled back
    _advance_with_care(saga_id, runtime)


def _advance_with_care(saga_id: UUID, runtime: Runtime) -> None:
    """Claim, then run, each attempt; returns at once if another careful advance is under way."""
    while True:
        with _AdvancerLock(saga_id) as mine, caused_by(saga_id, None):
            if not mine:
                return  # its holder re-checks the saga after letting go, so nothing is missed
            while _advance_one(saga_id, runtime):
                pass
        if not _runnable(saga_id, runtime):
            return


def _runnable(saga_id: UUID, runtime: Runtime) -> bool:
    """Did something (an event, a cancel) make the saga movable while we held it?"""
    now = runtime.clock.now()
    moving = Q(status__in=[SagaStatus.STARTED, SagaStatus.COMPENSATING]) & (
        Q(retry_at__isnull=True) | Q(retry_at__lte=now)
    )
    expired = Q(status=SagaStatus.WAITING, timer_at__lte=now)
    return SagaInstance.objects.filter(moving | expired, pk=saga_id).exists()


@_log_scope
def signal(saga_id: UUID, event: str, payload: dict | None, runtime: Runtime) -> bool:
    """Deliver `event`. Ends the wait for it, or is kept for a wait still ahead (even one the
    saga is about to enter). False when the saga can no longer use it: finished, rolling back,
    past that wait, or waiting past the wait's deadline (refused here, whether or not the
    sweeper has expired the wait yet). SagaBusy when its row stays locked."""
    with _waiting_briefly(saga_id):
        saga = _locked(saga_id)
        definition = definition_of(saga)
        if saga.status not in ACTIVE or saga.direction != Direction.FORWARD:
            return False
        now = runtime.clock.now()
        if _waits_for(saga, definition, event):
            if saga.timer_at is not None and saga.timer_at <= now:
                return False
            _finish_running(saga, SagaStep.Status.SUCCEEDED, now, result=payload)
            _move(saga, definition, saga.step_index + 1, now, runtime)
            _save_and_schedule(saga, runtime)
            return True
        if _wait_ahead(saga, definition, event, now):
            saga.data.setdefault(EVENTS_KEY, {})[event] = payload or {}
            saga.save(update_fields=["data", "updated_at"])
            return True
        return False


def _waits_for(saga: SagaInstance, definition: SagaDefinition, event: str) -> bool:
    if saga.status != SagaStatus.WAITING:
        return False  # (a saga past its last step, not yet marked COMPLETED, has no step here)
    step = definition.steps[saga.step_index]
    return isinstance(step, Wait) and step.event == event


def _wait_ahead(saga: SagaInstance, definition: SagaDefinition, event: str, now: datetime) -> bool:
    """Is there a wait for `event` the saga has not entered yet, and will enter? The step it
    is at counts unless it is already waiting there (for a remote reply)."""
    first = saga.step_index + 1 if saga.status == SagaStatus.WAITING else saga.step_index
    ctx = _context(saga, definition, now)
    return any(isinstance(step, Wait) and step.event == event and step.when(ctx) for step in definition.steps[first:])


@_log_scope
def cancel(saga_id: UUID, reason: str, runtime: Runtime) -> bool:
    """Roll the saga back with `reason`, if it has not passed its pivot. SagaBusy when its row
    stays locked."""
    with _waiting_briefly(saga_id):
        saga = _locked(saga_id)
        definition = definition_of(saga)
        if saga.status not in ACTIVE or saga.direction != Direction.FORWARD or saga.step_index > definition.pivot_index:
            return False
        _begin_compensation(saga, definition, saga.step_index, reason, f"cancelled: {reason}", runtime)
        _save_and_schedule(saga, runtime)
        return True


@_log_scope
def retry(saga_id: UUID, runtime: Runtime) -> SagaInstance:
    """Operator: resume a FAILED saga where it stopped (or nudge a stuck one)."""
    with transaction.atomic():
        saga = _locked(saga_id)
        if saga.status not in (SagaStatus.FAILED, SagaStatus.STARTED, SagaStatus.COMPENSATING):
            raise SagaStateConflict(f"a {saga.status} saga cannot be retried")
        if saga.status == SagaStatus.FAILED:
            backward = saga.direction == Direction.BACKWARD
            saga.status = SagaStatus.COMPENSATING if backward else SagaStatus.STARTED
            saga.attempts = saga.crashes = 0  # a fresh start: history rows stay
        saga.retry_at = None
        saga.wake_at = runtime.clock.now() + timedelta(seconds=runtime.stall_after)
        _save_and_schedule(saga, runtime)
        return saga


@_log_scope
def compensate(saga_id: UUID, runtime: Runtime) -> SagaInstance:
    """Operator: roll back a saga that is stuck or FAILED before its pivot, with the definition's
    operator reason. A saga already rolling back (FAILED in a compensation) keeps its reason."""
    with transaction.atomic():
        saga = _locked(saga_id)
        definition = definition_of(saga)
        if saga.status in (SagaStatus.COMPLETED, SagaStatus.COMPENSATED, SagaStatus.COMPENSATING):
            raise SagaStateConflict(f"a {saga.status} saga cannot be compensated")
        if saga.direction == Direction.BACKWARD:
            return retry(saga_id, runtime)
        if saga.step_index > definition.pivot_index:
            raise SagaStateConflict("the saga has passed its pivot; it can only go forward")
        _begin_compensation(
            saga,
            definition,
            saga.step_index,
            definition.operator_reason,
            "compensation requested by an operator",
            runtime,
        )
        _save_and_schedule(saga, runtime)
        return saga


@_log_scope
def rewind(saga_id: UUID, step_name: str, runtime: Runtime) -> SagaInstance:
    """Operator: run the saga forward again from `step_name` (participants are idempotent, so
    steps that already happened change nothing)."""
    with transaction.atomic():
        saga = _locked(saga_id)
        definition = definition_of(saga)
        index = definition.step_named(step_name)
        moving_forward = saga.status in ACTIVE and saga.direction == Direction.FORWARD
        failed_forward = saga.status == SagaStatus.FAILED and saga.direction == Direction.FORWARD
        if not (moving_forward or failed_forward) or index > saga.step_index:
            raise SagaStateConflict(f"cannot replay a {saga.status} saga from {step_name}")
        if index <= definition.pivot_index < saga.step_index:
            raise SagaStateConflict(f"the saga has passed its pivot; it cannot go back to {step_name}")
        _finish_running(saga, SagaStep.Status.ABANDONED, runtime.clock.now())
        # What the steps up to here did stays done until they run again: a roll-back before the
        # saga is back there must undo them too.
        saga.data[REACHED_KEY] = max(saga.step_index, saga.data.get(REACHED_KEY, -1))
        saga.status = SagaStatus.STARTED
        _move(saga, definition, index, runtime.clock.now(), runtime)
        _save_and_schedule(saga, runtime)
        return saga


@_log_scope
def resolve(saga_id: UUID, runtime: Runtime) -> bool:
    """Operator: mark a FAILED saga resolved (someone repaired what it left by hand). It stays
    FAILED, the status the contract knows, and is no longer moved by the engine or counted as
    needing an operator. False when it was resolved already."""
    with transaction.atomic():
        saga = _locked(saga_id)
        if saga.status != SagaStatus.FAILED:
            raise SagaStateConflict(f"a {saga.status} saga cannot be resolved: only a FAILED one")
        if saga.resolved_at is not None:
            return False
        saga.resolved_at = runtime.clock.now()
        saga.save(update_fields=["resolved_at", "updated_at"])
        return True


def definition_of(saga: SagaInstance) -> SagaDefinition:
    """The version the saga started with, if this code gives it the steps it has always had."""
    return definitions.checked(definitions.get(saga.type, saga.version))


# --- one step -------------------------------------------------------------------------------


def _advance_at_once(saga_id: UUID, runtime: Runtime) -> bool:
    """Take one step in one transaction. True if the saga moved and may move again at once."""
    try:
        with transaction.atomic(), published_together():
            saga = _locked(saga_id)
            if saga.claimed or saga.crashes:
                raise _NeedsCare
            return _decide(saga, runtime, functools.partial(_attempt_now, _Position.of(saga)))
    except _StepFailed as failed:
        return _record_failure(saga_id, failed, runtime)
    except (DatabaseError, DefinitionError, _NeedsCare):
        raise
    except Exception as error:  # noqa: BLE001 - a failing hook (when, on_enter, on_compensated)
        return _hook_failed(saga_id, error, runtime)


def _advance_one(saga_id: UUID, runtime: Runtime) -> bool:
    """Take one step with care. True if the saga moved and may move again at once."""
    try:
        claim = _claim(saga_id, runtime)
    except (DatabaseError, DefinitionError):
        raise  # the database is away, or this code lacks the saga's steps: the sweeper brings it back
    except Exception as error:  # noqa: BLE001 - a failing hook (when, on_enter, on_compensated)
        return _hook_failed(saga_id, error, runtime)
    if not isinstance(claim, Claim):
        return claim
    try:
        return _run(saga_id, claim, runtime)
    except DatabaseError as error:
        if connection_error_lost(error):
            connection_lost_during(claim)
        raise


def _hook_failed(saga_id: UUID, error: Exception, runtime: Runtime) -> bool:
    """Record a failure outside any step's action, back off, and stop after a few."""
    description = _described(error)
    with transaction.atomic():
        saga = _locked(saga_id)
        saga.attempts += 1
        saga.error = f"{saga.current_step or 'saga'}: {description}"
        if saga.attempts >= MAX_HOOK_FAILURES:
            _end(saga, SagaStatus.FAILED)
            log.error("saga %s FAILED: %s", saga.id, saga.error)
            return False
        _back_off(saga, HOOK_RETRY.backoff(saga.attempts, runtime.rng), runtime)
    return False


def _claim(saga_id: UUID, runtime: Runtime) -> Claim | bool:
    with transaction.atomic():
        return _decide(_locked(saga_id), runtime, _claim_attempt)


# How the next attempt of a step is taken: claimed for a second transaction (a Claim, or False
# for a crash found), or run at once (True if the saga may move again at once).
T = TypeVar("T", Claim | bool, bool)
Attempt = Callable[[SagaInstance, SagaDefinition, Step, str, RetryPolicy, Runtime], T]


def _decide(saga: SagaInstance, runtime: Runtime, attempt: Attempt[T]) -> T | bool:
    """What the locked saga does next: nothing yet, a move of its own, or an attempt of a step."""
    definition = definition_of(saga)
    now = runtime.clock.now()
    if saga.status in TERMINAL:
        return False
    if saga.deadline and now >= saga.deadline and saga.direction == Direction.FORWARD:
        if saga.step_index < definition.pivot_index:
            return _deadline_passed(saga, definition, runtime)
        # At or past its pivot a saga has all it needs: it only goes forward, however long that
        # takes (a capture retried through a day of provider outage), rather than undo or stop.
        saga.deadline = None
    if saga.retry_at and saga.retry_at > now:
        return False
    if saga.status == SagaStatus.WAITING:
        if not (saga.timer_at and saga.timer_at <= now):
            return False
        if isinstance(definition.steps[saga.step_index], Wait):
            return _wait_expired(saga, definition, runtime)
        return _reply_timed_out(saga, definition, runtime)
    if saga.direction == Direction.FORWARD:
        return _decide_forward(saga, definition, runtime, attempt)
    return _decide_backward(saga, definition, runtime, attempt)


def _decide_forward(saga: SagaInstance, definition: SagaDefinition, runtime: Runtime, attempt: Attempt[T]) -> T | bool:
    now = runtime.clock.now()
    ctx = _context(saga, definition, now)
    _pass_over_skipped(saga, definition, ctx, now, runtime)
    if saga.step_index >= len(definition.steps):
        _end(saga, SagaStatus.COMPLETED)
        return False
    step = definition.steps[saga.step_index]
    if isinstance(step, Wait):
        return _enter_wait(saga, definition, step, ctx, runtime)
    return attempt(saga, definition, step, SagaStep.Kind.ACTION, step.retry, runtime)


def _pass_over_skipped(
    saga: SagaInstance, definition: SagaDefinition, ctx: StepContext[Any], now: datetime, runtime: Runtime
) -> None:
    """Move past the steps ahead that do not apply to this saga, recording each as skipped."""
    steps = definition.steps
    while saga.step_index < len(steps) and not steps[saga.step_index].when(ctx):
        _record(saga, steps[saga.step_index].name, SagaStep.Kind.ACTION, SagaStep.Status.SKIPPED, now)
        _move(saga, definition, saga.step_index + 1, now, runtime)


def _decide_backward(saga: SagaInstance, definition: SagaDefinition, runtime: Runtime, attempt: Attempt[T]) -> T | bool:
    now = runtime.clock.now()
    # Steps with nothing to undo are passed over without a history row.
    ctx = _context(saga, definition, now)
    while saga.step_index >= 0 and not _needs_compensation(definition.steps[saga.step_index], ctx):
        saga.step_index -= 1
    if saga.step_index < 0:
        if definition.on_compensated is not None:
            definition.on_compensated(ctx, saga.reason)
        _end(saga, SagaStatus.COMPENSATED)
        return False
    step = _step_at(definition, saga.step_index)
    saga.current_step = step.name
    return attempt(saga, definition, step, SagaStep.Kind.COMPENSATION, step.compensation_retry, runtime)


def _claim_attempt(
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
            return _give_up(saga, definition, step, kind, f"{step.name}: its worker died {saga.crashes} times", runtime)
        saga.error = f"{step.name}: its worker died during attempt {saga.attempts}"
        _back_off(saga, policy.backoff(saga.attempts, runtime.rng), runtime)
        return False
    saga.attempts += 1
    saga.retry_at = None
    # If the sweeper finds it still here, the advancer is dead or slow; a live one keeps its
    # advisory lock, so the extra doorbell is harmless.
    saga.wake_at = now + timedelta(seconds=runtime.stall_after)
    saga.claimed = True
    _save(saga)
    note_saga(saga)
    row = _record(saga, step.name, kind, SagaStep.Status.RUNNING, now, finished=False, worker=_worker())
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
    _save(saga)
    SagaStep.objects.filter(pk=row.pk).update(worker=_worker())
    return Claim(row_id=row.pk, status=saga.status, direction=saga.direction, step_index=saga.step_index)


def _attempt_now(
    found: _Position,
    saga: SagaInstance,
    definition: SagaDefinition,
    step: Step,
    kind: str,
    policy: RetryPolicy,
    runtime: Runtime,
) -> bool:
    """Run the step's next attempt in the saga's transaction, record it and move the saga.
    `found`: the saga as its lock found it, to tell in the next transaction if it moved."""
    now = runtime.clock.now()
    saga.attempts += 1
    saga.retry_at = None
    note_saga(saga)
    ctx = _context(saga, definition, now, step.name, kind)
    running_started(saga, step=step, kind=kind, since=now)  # for operators: nothing shows until it ends
    try:
        with time_limit(step.timeout):
            outcome = _invoke(step, kind, ctx, runtime)
    except Exception as error:  # recorded after the rollback, in _record_failure
        if connection_lost():
            raise  # not the step's failure: the doorbell's task runs it again on a new connection
        raise _StepFailed(found, saga.step_index, kind, now, error) from error
    finally:
        running_ended(saga.id)
    return _conclude(saga, definition, step, _attempt_row(saga, step.name, kind, now), ctx, outcome, runtime)


def _completed_after(saga: SagaInstance, definition: SagaDefinition, runtime: Runtime) -> bool:
    """After a step, in its transaction: pass over the steps ahead that do not apply, and end the
    saga if none is left. A hook that fails here is met again when the next step is decided."""
    now = runtime.clock.now()
    try:
        _pass_over_skipped(saga, definition, _context(saga, definition, now), now, runtime)
    except Exception:  # noqa: BLE001 - handled in the next transaction, like any failing hook
        return False
    if saga.step_index < len(definition.steps):
        return False
    _end(saga, SagaStatus.COMPLETED)
    return True


def _record_failure(saga_id: UUID, failed: _StepFailed, runtime: Runtime) -> bool:
    """The step's transaction rolled back: record the failed attempt in the next one. Its row lock
    was let go in between, and another doorbell's advancer may have run the step meanwhile: the
    attempt ran all the same, so it is written whatever happened, and counts against the step (by
    its policy) while the saga is still at that step."""
    with transaction.atomic():
        saga = _locked(saga_id)
        if _Position.of(saga) == failed.found:
            return _decide(saga, runtime, functools.partial(_attempt_failed, failed))
        if failed.found.same_step(saga):  # another advancer's attempts of it came in between
            definition = definition_of(saga)
            step = _step_at(definition, saga.step_index)
            return _attempt_failed(failed, saga, definition, step, failed.kind, _policy(step, failed.kind), runtime)
        if not isinstance(failed.error, participants.AwaitingReply):  # (nothing ran: its command is sent)
            _finish(_overtaken_row(saga, failed), SagaStep.Status.FAILED, runtime, error=_described(failed.error))
        return True


def _attempt_failed(
    failed: _StepFailed,
    saga: SagaInstance,
    definition: SagaDefinition,
    step: Step,
    kind: str,
    policy: RetryPolicy,
    runtime: Runtime,
) -> bool:
    if (saga.step_index, kind) != (failed.step_index, failed.kind):
        return True  # the decision differs now (a hook's answer changed): look again
    saga.attempts += 1
    saga.retry_at = None
    row = _attempt_row(saga, step.name, kind, failed.started_at)
    if isinstance(failed.error, participants.AwaitingReply):
        return _await_reply(saga, step, row, failed.error, runtime)
    return _failed(saga, definition, step, row, failed.error, runtime)


def _overtaken_row(saga: SagaInstance, failed: _StepFailed) -> SagaStep:
    """The row of a failed attempt whose saga has left its step meanwhile: history only."""
    name = definition_of(saga).steps[failed.step_index].name
    row = _attempt_row(saga, name, failed.kind, failed.started_at)
    row.attempt = failed.found.attempts + 1
    return row


def _attempt_row(saga: SagaInstance, name: str, kind: str, started_at: datetime) -> SagaStep:
    """The attempt's history row, written when it finishes (see _finish)."""
    return SagaStep(
        saga=saga, name=name, kind=kind, status=SagaStep.Status.RUNNING, attempt=saga.attempts, started_at=started_at
    )


def _run(saga_id: UUID, claim: Claim, runtime: Runtime) -> bool:
    with transaction.atomic():
        saga = _locked(saga_id)
        row = SagaStep.objects.get(pk=claim.row_id)
        if row.status != SagaStep.Status.RUNNING or claim != Claim(
            row.pk, saga.status, saga.direction, saga.step_index
        ):
            SagaStep.objects.filter(pk=row.pk, status=SagaStep.Status.RUNNING).update(status=SagaStep.Status.ABANDONED)
            saga.claimed = False
            saga.save(update_fields=["claimed", "updated_at"])
            return saga.status not in TERMINAL
        saga.claimed = False
        definition = definition_of(saga)
        step = _step_at(definition, saga.step_index)
        ctx = _context(saga, definition, runtime.clock.now(), step.name, row.kind)
        try:
            with transaction.atomic(), time_limit(step.timeout):
                outcome = _invoke(step, row.kind, ctx, runtime)
        except participants.AwaitingReply as waiting:
            return _await_reply(saga, step, row, waiting, runtime)
        except Exception as error:
            if connection_lost():
                raise  # not the step's failure: this attempt is taken over on a new connection
            return _failed(saga, definition, step, row, error, runtime)
        return _conclude(saga, definition, step, row, ctx, outcome, runtime)


def _conclude(
    saga: SagaInstance,
    definition: SagaDefinition,
    step: Step,
    row: SagaStep,
    ctx: StepContext[Any],
    outcome: object,
    runtime: Runtime,
) -> bool:
    """The attempt returned: record its outcome and move the saga on (or back)."""
    saga.data = ctx.data
    if isinstance(outcome, Refusal) and row.kind == SagaStep.Kind.ACTION and step.kind != StepKind.RETRIABLE:
        _finish(row, SagaStep.Status.REFUSED, runtime, error=outcome.reason)
        _begin_compensation(
            saga, definition, saga.step_index, outcome.reason, f"{step.name} refused: {outcome.reason}", runtime
        )
    elif isinstance(outcome, Refusal):
        return _failed(saga, definition, step, row, RuntimeError(f"refused: {outcome.reason}"), runtime)
    else:
        _finish(row, SagaStep.Status.SUCCEEDED, runtime)
        forward = row.kind == SagaStep.Kind.ACTION
        _move(saga, definition, saga.step_index + (1 if forward else -1), runtime.clock.now(), runtime)
        if forward and _completed_after(saga, definition, runtime):
            return False
    _save(saga)
    return True


def _invoke(step: Step[Any], kind: str, ctx: StepContext[Any], runtime: Runtime) -> object:
    function = step.action if kind == SagaStep.Kind.ACTION else step.compensation
    if function is None:
        raise DefinitionError(f"step {step.name} has no {kind}")  # never claimed: nothing to undo
    with caused_by(ctx.saga_id, ctx.command_id(step.name, kind)):
        injected = runtime.faults.before(step.name, kind, ctx)
        if injected is not None:
            return injected
        return function(ctx)


def _failed(
    saga: SagaInstance, definition: SagaDefinition, step: Step, row: SagaStep, error: Exception, runtime: Runtime
) -> bool:
    description = _described(error)
    _finish(row, SagaStep.Status.FAILED, runtime, error=description)
    if isinstance(error, participants.RemoteCommandFailed):
        saga.data.get(participants.REPLIES_KEY, {}).pop(str(error.command_id), None)  # the retry sends it anew
    policy = _policy(step, row.kind)
    transient = isinstance(error, StepTimeout) or policy.is_transient(error)
    if transient and not policy.exhausted(saga.attempts):
        saga.error = description
        if saga.attempts == int(saga_settings.SAGA_LONG_RETRY_ATTEMPTS):
            log.error(
                "%s %s still failing after %d attempts, retried until it succeeds: %s",
                row.kind,
                step.name,
                saga.attempts,
                description,
            )
        _back_off(saga, policy.backoff(saga.attempts, runtime.rng), runtime)
        return False
    return _give_up(saga, definition, step, row.kind, description, runtime)


def _policy(step: Step, kind: str) -> RetryPolicy:
    return step.retry if kind == SagaStep.Kind.ACTION else step.compensation_retry


def _described(error: BaseException) -> str:
    return "".join(traceback.format_exception_only(error)).strip()


def _back_off(saga: SagaInstance, delay: float, runtime: Runtime) -> None:
    saga.retry_at = runtime.clock.now() + timedelta(seconds=delay)
    saga.wake_at = _due(saga, saga.retry_at)
    _save(saga)
    runtime.schedule(saga.id, delay)


def _due(saga: SagaInstance, at: datetime) -> datetime:
    """When the sweeper must look: `at`, or the saga's deadline if that comes first."""
    return min(at, saga.deadline) if saga.deadline else at


def _give_up(
    saga: SagaInstance, definition: SagaDefinition, step: Step, kind: str, error: str, runtime: Runtime
) -> bool:
    """A step failed for good: before the pivot, roll back with the step's reason; at or after it
    (where nothing is undone), stop for an operator rather than give a reason that did not happen."""
    if kind == SagaStep.Kind.ACTION and saga.step_index < definition.pivot_index:
        _begin_compensation(saga, definition, saga.step_index, step.failure_reason, error, runtime)
        _save(saga)
        return True
    saga.error = error
    _end(saga, SagaStatus.FAILED)
    log.error("saga %s FAILED at %s (%s): %s", saga.id, step.name, kind, error)
    return False


# --- remote participants -------------------------------------------------------------------


def _await_reply(
    saga: SagaInstance, step: Step[Any], row: SagaStep, waiting: participants.AwaitingReply, runtime: Runtime
) -> bool:
    """The step called a remote participant: send the command (the step's own changes were
    rolled back with its savepoint) and wait; the reply runs the step again."""
    now = runtime.clock.now()
    participants.send_command(waiting, key=saga.aggregate_id, correlation_id=saga.id)
    sent = {"command": waiting.command, "command_id": str(waiting.command_id)}
    _finish(row, SagaStep.Status.SENT, runtime, result=sent)
    saga.status = SagaStatus.WAITING
    saga.timer_at = now + timedelta(seconds=step.timeout or DEFAULT_REPLY_TIMEOUT)
    saga.wake_at = _due(saga, saga.timer_at)
    _save(saga)
    return False


@_log_scope
def deliver_reply(saga_id: UUID, command_id: UUID, ok: bool, payload: dict, runtime: Runtime) -> bool:
    """A remote participant answered. If the saga waits for this very command (its step and
    attempt: command ids name both), keep the reply and run the step again; a late or repeated
    reply is only logged (the inbox keeps its id) and changes nothing. False when ignored."""
    with transaction.atomic():
        saga = _locked(saga_id)
        if not _awaits(saga, definition_of(saga), command_id):
            log.info("saga %s: ignored a reply to command %s it is not waiting for", saga_id, command_id)
            return False
        saga.data.setdefault(participants.REPLIES_KEY, {})[str(command_id)] = {"ok": ok, "payload": payload}
        _resume(saga, runtime)
        saga.attempts -= 1  # the run after the reply is the attempt that sent the command, counted again
        _save_and_schedule(saga, runtime)
        return True


def _awaits(saga: SagaInstance, definition: SagaDefinition, command_id: UUID) -> bool:
    """Is the saga paused at a step whose last move was sending this very command?"""
    if saga.status != SagaStatus.WAITING or isinstance(definition.steps[saga.step_index], Wait):
        return False
    last = saga.steps.order_by("-id").values_list("status", "result").first()
    return last is not None and last[0] == SagaStep.Status.SENT and (last[1] or {}).get("command_id") == str(command_id)


def _reply_timed_out(saga: SagaInstance, definition: SagaDefinition[Any], runtime: Runtime) -> bool:
    step = _step_at(definition, saga.step_index)
    _resume(saga, runtime)
    kind = SagaStep.Kind.ACTION if saga.direction == Direction.FORWARD else SagaStep.Kind.COMPENSATION
    policy = _policy(step, kind)
    saga.error = f"{step.name}: no reply from the participant in time"
    if policy.exhausted(saga.attempts):
        return _give_up(saga, definition, step, kind, saga.error, runtime)
    _back_off(saga, policy.backoff(saga.attempts, runtime.rng), runtime)
    return False


def _resume(saga: SagaInstance, runtime: Runtime) -> None:
    saga.status = SagaStatus.COMPENSATING if saga.direction == Direction.BACKWARD else SagaStatus.STARTED
    saga.timer_at = None
    saga.wake_at = runtime.clock.now() + timedelta(seconds=runtime.stall_after)


# --- waits, deadlines, transitions ----------------------------------------------------------


def _enter_wait(saga: SagaInstance, definition: SagaDefinition, step: Wait, ctx: StepContext, runtime: Runtime) -> bool:
    now = runtime.clock.now()
    early = saga.data.get(EVENTS_KEY, {})
    if step.event in early:
        _record(saga, step.name, SagaStep.Kind.ACTION, SagaStep.Status.SUCCEEDED, now, result=early[step.event])
        _move(saga, definition, saga.step_index + 1, now, runtime)
        _save(saga)
        return True
    if step.on_enter is not None:
        step.on_enter(ctx)
    saga.status = SagaStatus.WAITING
    saga.attempts = 1  # waiting is the wait's one attempt, as its history row says
    saga.timer_at = now + timedelta(seconds=step.timeout(ctx))
    saga.wake_at = _due(saga, saga.timer_at)
    _save(saga)
    _record(saga, step.name, SagaStep.Kind.ACTION, SagaStep.Status.RUNNING, now, finished=False)
    return False


def _wait_expired(saga: SagaInstance, definition: SagaDefinition[Any], runtime: Runtime) -> bool:
    step = definition.steps[saga.step_index]
    assert isinstance(step, Wait)  # only a saga waiting at a Wait step gets here (see _claim)
    now = runtime.clock.now()
    _finish_running(saga, SagaStep.Status.FAILED, now, error=f"no {step.event} before the deadline")
    _begin_compensation(saga, definition, saga.step_index, step.timeout_reason, f"{step.name} timed out", runtime)
    _save(saga)
    return True


def _deadline_passed(saga: SagaInstance, definition: SagaDefinition, runtime: Runtime) -> bool:
    """Before its pivot, a saga out of time rolls back with the reason of the step it is at."""
    _finish_running(saga, SagaStep.Status.ABANDONED, runtime.clock.now())
    step = definition.steps[saga.step_index]
    _begin_compensation(saga, definition, saga.step_index, step.failure_reason, "the saga's deadline passed", runtime)
    _save(saga)
    return True


def _begin_compensation(
    saga: SagaInstance, definition: SagaDefinition, from_index: int, reason: str, error: str, runtime: Runtime
) -> None:
    """Undo every step up to and including `from_index`, or the furthest a rewound saga had
    reached: a refused or failed step may have done part of its work, and compensations are
    idempotent (undoing nothing is a no-op)."""
    now = runtime.clock.now()
    _finish_running(saga, SagaStep.Status.ABANDONED, now)
    saga.status = SagaStatus.COMPENSATING
    saga.direction = Direction.BACKWARD
    saga.step_index = min(max(from_index, saga.data.get(REACHED_KEY, -1)), len(definition.steps) - 1)
    saga.current_step = definition.steps[saga.step_index].name
    saga.attempts = saga.crashes = 0
    saga.reason = reason
    saga.error = error
    saga.retry_at = saga.timer_at = None
    saga.wake_at = now + timedelta(seconds=runtime.stall_after)
    _announce(saga, "saga.compensating", step=saga.current_step, reason=reason)


def _move(saga: SagaInstance, definition: SagaDefinition[Any], index: int, now: datetime, runtime: Runtime) -> None:
    saga.step_index = index
    if index > definition.pivot_index:
        saga.deadline = None  # it bounds the way to the pivot; after it the saga goes on until done
    saga.current_step = definition.steps[index].name if 0 <= index < len(definition.steps) else ""
    saga.attempts = saga.crashes = 0
    saga.retry_at = saga.timer_at = None
    if saga.direction == Direction.FORWARD:
        # Past the step that failed: its error is history (kept on its attempt's row). Rolling
        # back keeps it, as why the saga is compensating.
        saga.error = ""
    if saga.status == SagaStatus.WAITING:
        saga.status = SagaStatus.STARTED
    saga.wake_at = now + timedelta(seconds=runtime.stall_after)


def _end(saga: SagaInstance, status: str) -> None:
    saga.status = status
    saga.wake_at = saga.retry_at = saga.timer_at = None
    if status != SagaStatus.FAILED:
        saga.current_step = ""
    _save(saga)
    log.info("saga %s %s", saga.type, status)
    details: dict[str, str] = {}
    if status == SagaStatus.COMPENSATED:
        details = {"reason": saga.reason}
    elif status == SagaStatus.FAILED:
        details = {"step": saga.current_step, "error": saga.error}
    _announce(saga, f"saga.{status.lower()}", **details)


def _announce(saga: SagaInstance, type: str, **details: Any) -> None:
    payload = {"saga_id": saga.id, "saga_type": saga.type, "aggregate_id": saga.aggregate_id, **details}
    publish(type=type, key=saga.aggregate_id, payload=payload, correlation_id=saga.id)


def _step_at(definition: SagaDefinition[Any], index: int) -> Step[Any]:
    """The step at `index`, for an attempt: actions, compensations and remote replies are only
    ever of steps (a wait is entered and left in the claim, never run)."""
    step = definition.steps[index]
    if not isinstance(step, Step):
        raise DefinitionError(f"saga {definition.name} v{definition.version}: {step.name} is a wait, not a step")
    return step


def _needs_compensation(step: AnyStep, ctx: StepContext[Any]) -> bool:
    return isinstance(step, Step) and step.compensation is not None and step.when(ctx)


def _context(
    saga: SagaInstance, definition: SagaDefinition[Any], now: datetime, step: str = "", kind: str = SagaStep.Kind.ACTION
) -> StepContext[Any]:
    return StepContext(
        saga_id=saga.id,
        request_id=saga.correlation_id,
        data=copy.deepcopy(saga.data),
        now=now,
        attempt=max(saga.attempts, 1),
        step=step,
        kind=kind,
        caller=participants.call,
        data_class=definition.data,
    )


def _record(
    saga: SagaInstance,
    name: str,
    kind: str,
    status: str,
    now: datetime,
    *,
    finished: bool = True,
    result: object = None,
    worker: str = "",
) -> SagaStep:
    return SagaStep.objects.create(
        saga=saga,
        worker=worker,
        name=name,
        kind=kind,
        status=status,
        attempt=max(saga.attempts, 1),
        started_at=now,
        finished_at=now if finished else None,
        result=result,
    )


def _finish(row: SagaStep, status: str, runtime: Runtime, *, error: str = "", result: object = None) -> None:
    """Finish an attempt: its claimed row, or the row of an attempt run at once, written now."""
    row.status = status
    row.error = error
    row.finished_at = runtime.clock.now()
    if result is not None:
        row.result = result
    if row.pk is None:
        rows_insert([row])
    else:
        row.save(update_fields=["status", "error", "finished_at", "result"])
    seconds = (row.finished_at - row.started_at).total_seconds()
    # The line names this attempt: the saga's own count may have moved on (a failure is recorded
    # in the transaction after the step's).
    with bound(step=row.name, attempt=row.attempt):
        if status == SagaStep.Status.FAILED:
            log.warning("%s %s attempt %d: FAILED in %.3fs: %s", row.kind, row.name, row.attempt, seconds, error)
        else:
            log.info("%s %s attempt %d: %s in %.3fs", row.kind, row.name, row.attempt, status, seconds)


def _finish_running(saga: SagaInstance, status: str, now: datetime, *, error: str = "", result: object = None) -> None:
    saga.claimed = False
    saga.steps.filter(status=SagaStep.Status.RUNNING).update(status=status, finished_at=now, error=error, result=result)


def _locked(saga_id: UUID) -> SagaInstance:
    # Every transaction starts here: written out, the ORM does not build it each time.
    found = list(
        SagaInstance.objects.raw(f"SELECT * FROM {SagaInstance._meta.db_table} WHERE id = %s FOR UPDATE", [saga_id])
    )
    if not found:
        raise SagaInstance.DoesNotExist(f"no saga {saga_id}")
    note_saga(found[0])
    return found[0]


# What a transaction of the engine may change in a saga's row: all but what it was started with.
_MOVING = [
    field
    for field in SagaInstance._meta.concrete_fields
    if field.name not in ("id", "type", "version", "aggregate_id", "correlation_id", "created_at")
]


@contextmanager
def _waiting_briefly(saga_id: UUID) -> Iterator[None]:
    """The transaction of a request that locks a saga's row (a signal, a cancel): it waits for
    another session's lock SAGA_LOCK_TIMEOUT seconds at most, then raises SagaBusy, instead of
    hanging while a step runs or until the server ends a vanished worker's session. Inside a
    caller's transaction (the consumer's), the caller's own lock timeout is back after it."""
    try:
        with transaction.atomic():
            callers = _set_lock_timeout(f"{round(saga_settings.SAGA_LOCK_TIMEOUT * 1000)}ms")
            yield
            _set_lock_timeout(callers)
    except OperationalError as error:
        if not lock_not_available(error):
            raise
        raise SagaBusy(f"saga {saga_id} is busy (another session holds it); try again shortly") from error.__cause__


def _set_lock_timeout(value: str) -> str:
    """Set the lock timeout until the transaction (or its savepoint) ends; the one it replaces."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)", [value])
        return cursor.fetchone()[0]


def _save(saga: SagaInstance) -> None:
    """Write the saga's progress (every transaction of every saga ends with it)."""
    rows_update(saga, _MOVING)


def _save_and_schedule(saga: SagaInstance, runtime: Runtime) -> None:
    _save(saga)
    runtime.schedule(saga.id, 0)


class _AdvancerLock:
    """A session advisory lock on the saga: one advancer at a time, released if its process dies."""

    def __init__(self, saga_id: UUID):
        self.key = str(saga_id)

    def __enter__(self) -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", [self.key])
            self.acquired = cursor.fetchone()[0]
        return self.acquired

    def __exit__(self, *exc_info: object) -> None:
        if self.acquired and not connection_lost():  # a lost session took its lock with it
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [self.key])
