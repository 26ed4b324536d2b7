"""The ceiling: how many place-order sagas per second the database allows on this machine when
nothing but their SQL runs (tools/bench/ceiling_worker.py), from N processes at once.

What a saga writes was read off PostgreSQL's statement log for one happy pickup order of two items
run by the engine (`log_statement = all`): the order, its two lines, the saga and the outbox rows
order.created and saga.started in the placing transaction; then stock.reserved with a reservation
and its lines and both products' `reserved`; funds.held with a hold and the customer's `reserved`,
payment.authorized with a payment; the skipped wait's step row; order.confirmed with the order's
status; payment.captured, funds.consumed and stock.committed with the payment, hold, reservation,
customer and products changed; saga.completed; a step row per step and the saga row at every move.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tools import procs

from .workload import PlannedOrder


@dataclass(frozen=True)
class CeilingRun:
    sagas_per_s: float  # wall clock
    machine_cpu_ms_per_saga: float  # the ceiling's processes and the database's together


def run(database_url: str, planned: list[PlannedOrder], processes: int, topics: dict[str, str]) -> CeilingRun:
    """Run the planned sagas' SQL from `processes` processes at once."""
    shares = [planned[n::processes] for n in range(processes)]
    with tempfile.TemporaryDirectory() as folder:
        children = [
            _start(Path(folder) / f"plan-{n}.json", database_url, share, topics) for n, share in enumerate(shares)
        ]
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready", "a ceiling process failed"
        began, cpu_before = time.perf_counter(), procs.machine_cpu_seconds()
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results = [json.loads(child.communicate(timeout=600)[0]) for child in children]
        elapsed, cpu = time.perf_counter() - began, procs.machine_cpu_seconds() - cpu_before
    if any(child.returncode for child in children):
        raise RuntimeError("a ceiling process failed (see its error above)")
    sagas = sum(r["sagas"] for r in results)
    return CeilingRun(sagas_per_s=sagas / elapsed, machine_cpu_ms_per_saga=cpu * 1000 / sagas)


def _start(path: Path, database_url: str, share: list[PlannedOrder], topics: dict[str, str]) -> subprocess.Popen[str]:
    orders = [asdict(order) for order in share]
    path.write_text(json.dumps({"database_url": database_url, "topics": topics, "orders": orders}, default=str))
    return subprocess.Popen(
        [sys.executable, "-m", "tools.bench.ceiling_worker", str(path)],
        cwd=procs.ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
