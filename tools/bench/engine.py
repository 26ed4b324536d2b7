"""Engine throughput: place-order sagas started in bulk, run by real Celery worker processes;
sagas per second from the first start to the last terminal state, and what each saga cost the
database server (commits, statements, savepoint statements) and Celery (advance_saga tasks)."""

from __future__ import annotations

from dataclasses import dataclass

from tools.procs import Proc, machine_cpu_seconds

from .processes import cpu_seconds, tasks_run
from .server import Observer
from .workload import PlannedOrder, place, wait_until_settled


@dataclass(frozen=True)
class EngineRun:
    sagas: int
    seconds: float
    commits_per_saga: float
    statements_per_saga: float | None  # None: pg_stat_statements is not available
    savepoints_per_saga: float | None
    tasks_per_saga: float
    worker_cpu_ms_per_saga: float  # the workers' CPU time (pool processes included) per saga
    machine_cpu_ms_per_saga: float  # every process's: workers, database, beat, the placing
    first_start: float  # wall clock
    last_end: float
    outcomes: dict[str, int]  # sagas by terminal status

    @property
    def sagas_per_s(self) -> float:
        return self.sagas / self.seconds


def run(observer: Observer, workers: list[Proc], planned: list[PlannedOrder], timeout: float) -> EngineRun:
    """Everything the server counts between the two snapshots is the sagas' (the workers, beat's
    sweeps, the placing), apart from the observer's own polls, which are subtracted: run nothing
    else against the bench database meanwhile."""
    tasks_before, cpu_before, machine_before = tasks_run(workers), cpu_seconds(workers), machine_cpu_seconds()
    before = observer.counters()
    own_before = observer.transactions
    began, saga_ids = place(planned)
    ended = wait_until_settled(observer, saga_ids, timeout)
    own = observer.transactions - own_before
    cost = observer.counters().minus(before, own)
    count = len(planned)
    outcomes = observer.query(
        "SELECT status, count(*) FROM saga_sagainstance WHERE id = ANY(%s::uuid[]) GROUP BY status", [saga_ids]
    )

    def per_saga(value: int | None) -> float | None:
        return None if value is None else value / count

    return EngineRun(
        sagas=count,
        seconds=ended - began,
        commits_per_saga=cost.commits / count,
        statements_per_saga=per_saga(cost.statements),
        savepoints_per_saga=per_saga(cost.savepoints),
        tasks_per_saga=(tasks_run(workers) - tasks_before) / count,
        worker_cpu_ms_per_saga=(cpu_seconds(workers) - cpu_before) * 1000 / count,
        machine_cpu_ms_per_saga=(machine_cpu_seconds() - machine_before) * 1000 / count,
        first_start=began,
        last_end=ended,
        outcomes=dict(outcomes),
    )
