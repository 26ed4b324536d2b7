"""Database connections that died under the process: a terminated backend, a restarted server, a
dropped network. Django notices a dead persistent connection only at the start of a request (with
CONN_HEALTH_CHECKS) or of a Celery task (Celery's Django fixup); these helpers drop one found dead
in the middle of work, so that the next query gets a new connection instead of failing on it again."""

import functools
import inspect
import logging
import time
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

from django.db import InterfaceError, OperationalError, connection

log = logging.getLogger(__name__)

# What a query on a dead connection raises: OperationalError ("server closed the connection
# unexpectedly", "terminating connection due to administrator command"), then InterfaceError
# ("connection already closed") for every query after it.
CONNECTION_ERRORS = (OperationalError, InterfaceError)

LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's SQLSTATE for a lock not granted within lock_timeout

T = TypeVar("T")
P = ParamSpec("P")

# Reads that answer a change already committed try longer (about 3 s in all) before the answer
# becomes a 503: the change happened, and its client should hear so.
AFTER_COMMIT_ATTEMPTS = 6


def connection_lost() -> bool:
    """Has the connection died (after an error), as opposed to the statement failing on a live
    one? Answered without a query, so also inside a failed transaction."""
    return connection.connection is None or bool(connection.connection.closed)


def connection_error_lost(error: BaseException) -> bool:
    """Was `error` the loss of the connection (libpq gave no SQLSTATE: the server never answered)
    rather than a statement's failure on a live one (a lock timeout, a deadlock)? Still known
    once Django has replaced the connection (it reconnects when an atomic block ends)."""
    if isinstance(error, InterfaceError):
        return True
    return isinstance(error, OperationalError) and getattr(error.__cause__, "pgcode", None) is None


def lock_not_available(error: BaseException) -> bool:
    """Was `error` a statement giving up on a lock after its `lock_timeout` (SQLSTATE 55P03)?"""
    return isinstance(error, OperationalError) and getattr(error.__cause__, "pgcode", None) == LOCK_NOT_AVAILABLE


def drop_dead_connection() -> bool:
    """After a database error: close the connection if it is dead. True when the connection is
    gone (so that the next query opens a new one), False when it works (the error was the
    statement's) or a transaction is open on it (whose outcome only the caller can handle)."""
    if connection.in_atomic_block:
        return False
    if connection.connection is not None and connection.is_usable():
        return False
    connection.close()
    return True


def on_live_connection(work: Callable[[], T], *, attempts: int = 3, pause: float = 0.2) -> T:
    """Run `work`, again on a new connection when it fails because its connection died, up to
    `attempts` times in all (pausing `pause`, then twice that, ...). Only for work that is safe to
    repeat: reads, or commands whose transaction died with the connection."""
    for attempt in range(1, attempts + 1):
        try:
            return work()
        except CONNECTION_ERRORS as error:
            if attempt == attempts or not drop_dead_connection():
                raise
            log.warning("database connection lost (%s); trying again on a new one", str(error).strip())
            time.sleep(pause * attempt)
    raise AssertionError("unreachable")


def at_task_start() -> None:
    """Before a Celery task: treat the connection as a new request would. A connection that died
    since the last task (a terminated backend, a restarted server) is checked at the task's first
    query and replaced; an old or broken one is closed. Celery's Django fixup does the same on
    task_prerun, but only in a worker and never for eager tasks; outside a transaction only."""
    if not connection.in_atomic_block:
        connection.close_if_unusable_or_obsolete()


def on_live_task(
    away: Callable[Concatenate[BaseException, P], T],
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """A Celery task's body, never spent on a dead connection: checked as at a request's start
    (at_task_start), and run again on a new connection if its own dies under it
    (on_live_connection: only for tasks safe to repeat). If the database stays away,
    `away(error, *the task's arguments)` answers for the task: it rings again later, or leaves
    the work to the task's next run."""

    def decorate(body: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(body)
        def task(*args: P.args, **kwargs: P.kwargs) -> T:
            at_task_start()
            try:
                return on_live_connection(lambda: body(*args, **kwargs))
            except CONNECTION_ERRORS as error:
                return away(error, *args, **kwargs)

        # Celery checks a task's arguments when it is sent, against the signature it reads here.
        task.__signature__ = inspect.signature(body)  # type: ignore[attr-defined]
        return task

    return decorate
