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

The modules, in layers (each imports only from the layers under it):
- starting, advancing, interventions: the entry points: start; advance; cancel and the operator's
  retry, compensate, rewind and resolve (signal and deliver_reply are the waits' and replies');
- attempt: the step, one attempt of its action or compensation, and its outcome;
- failures: an attempt, or a definition's hook, that raised;
- decision: what a locked saga does next;
- claims (an attempt claimed, or taken over), waits (an event for a wait), replies (a remote
  participant's command and reply);
- transitions: the saga moved between states (on, back, to a backoff, to its end; the pivot);
- steps (its definition), history (its attempt rows), row (its row, locked and written).
"""

from .advancing import advance
from .claims import MAX_CRASHES, Claim
from .failures import MAX_HOOK_FAILURES
from .interventions import SagaStateConflict, cancel, compensate, resolve, retry, rewind
from .replies import deliver_reply
from .row import SagaBusy
from .starting import start
from .steps import definition_of
from .waits import signal

__all__ = [
    "MAX_CRASHES",
    "MAX_HOOK_FAILURES",
    "Claim",
    "SagaBusy",
    "SagaStateConflict",
    "advance",
    "cancel",
    "compensate",
    "definition_of",
    "deliver_reply",
    "resolve",
    "retry",
    "rewind",
    "signal",
    "start",
]
