"""Drive a saga one transaction at a time, for tests that interleave workers by hand.

`engine.advance` runs each step of a saga in one transaction (`step`), or, moving a saga with
care, as two: a claim and a run. A test that wants to put something between them (an event, a
cancel, an operator, a worker that dies) takes them one at a time:

    claimed = stepping.claim(saga_id, runtime)     # 1st transaction: the attempt row is RUNNING
    if isinstance(claimed, stepping.Claim):
        harness.signal(saga_id, "fulfillment.accepted")   # ... anything, in between
        stepping.run(saga_id, claimed, runtime)    # 2nd transaction: the step runs, the saga moves

A claim that is never run is a worker that died between the two: the next claim or `advance`
finds its RUNNING row. Like the harness (saga.testing), this is for tests only: a real worker
advances a saga under its advisory lock, which these functions do not take.
"""

from uuid import UUID

from django.db import DatabaseError

from saga.messaging import caused_by
from saga.orchestration.engine import advancing, attempt, claims, failures
from saga.orchestration.engine.claims import Claim
from saga.orchestration.runtime import Runtime

__all__ = ["Claim", "claim", "lose_connection", "run", "step"]


def step(saga_id: UUID, runtime: Runtime) -> bool | None:
    """One step in one transaction, as `advance` takes it: True if the saga may move again at
    once. None if the saga must be moved with care (an attempt claimed and not run, a crash
    counted): then nothing was done, and `advance` would claim and run instead."""
    with caused_by(saga_id, None):
        try:
            return advancing.advance_at_once(saga_id, runtime)
        except advancing.NeedsCare:
            return None


def claim(saga_id: UUID, runtime: Runtime) -> Claim | bool:
    """The first transaction of the saga's next step, as `advance` takes it. A `Claim` of an
    action or compensation to `run`; otherwise the saga moved without running a step (a skip, a
    wait entered or ended, a timer, the end) and True if it may move again at once."""
    with caused_by(saga_id, None):
        try:
            return advancing.claim(saga_id, runtime)
        except DatabaseError:
            raise
        except Exception as error:  # noqa: BLE001 - a failing hook, handled as advance does
            return failures.hook_failed(saga_id, error, runtime)


def lose_connection(claimed: Claim) -> None:
    """The worker's database connection died while it ran `claimed` (a failover, a terminated
    backend): its transaction is gone, but the worker lives on, and its next claim takes the
    attempt over without counting a crash. Roll the run back first (`transaction.atomic()`)."""
    claims.connection_lost_during(claimed)


def run(saga_id: UUID, claimed: Claim, runtime: Runtime) -> bool:
    """The second transaction: run the claimed step (unless the saga was redirected meanwhile),
    record its outcome and move the saga. True if the saga may move again at once."""
    with caused_by(saga_id, None):
        return attempt.run(saga_id, claimed, runtime)
