"""End to end: orders POSTed to gunicorn at fixed rates by the open-loop generator (tools/bench/loadgen.py,
another process); for each rate, the latency from the order's intended send time to its saga's
terminal state (the saga row's updated_at, stamped by the worker that finished it), so no polling
adds load to the web."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any

from tools import procs

from .server import Observer
from .workload import TERMINAL, PlannedOrder

SUSTAINED_P99_MS = 1000.0  # a rate is sustained when its p99 stays under this


@dataclass(frozen=True)
class RateRun:
    rate: float
    sent: int
    accepted: int  # answered 202
    p50_ms: float
    p95_ms: float
    p99_ms: float
    p99_limit_ms: float = SUSTAINED_P99_MS  # the p99 under which the rate is sustained

    @property
    def sustained(self) -> bool:
        return self.accepted == self.sent and self.p99_ms <= self.p99_limit_ms


def run_rate(
    observer: Observer,
    url: str,
    token: str,
    planned: list[PlannedOrder],
    rate: float,
    seconds: float,
    timeout: float,
    p99_limit_ms: float = SUSTAINED_P99_MS,
) -> RateRun:
    """`rate` orders/s for `seconds`; `timeout`: deadline for their sagas to finish after the last is
    sent; the rate is sustained if every order was accepted and the p99 is under `p99_limit_ms`."""
    results = _generate(url, token, planned, rate, seconds)
    due = {order_id: intended for intended, status, order_id in results if status == 202}
    ended = _terminal_times(observer, list(due), timeout=timeout)
    latencies = sorted((ended[order_id] - intended) * 1000 for order_id, intended in due.items())
    return RateRun(
        rate=rate,
        sent=len(results),
        accepted=len(due),
        p50_ms=_percentile(latencies, 50),
        p95_ms=_percentile(latencies, 95),
        p99_ms=_percentile(latencies, 99),
        p99_limit_ms=p99_limit_ms,
    )


def _generate(url: str, token: str, planned: list[PlannedOrder], rate: float, seconds: float) -> list[list[Any]]:
    bodies = [
        {
            "customer_id": str(order.customer_id),
            "items": [{"product_id": str(item.product_id), "quantity": item.quantity} for item in order.items],
        }
        for order in planned
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".json") as spec:
        json.dump({"url": url, "token": token, "rate": rate, "seconds": seconds, "bodies": bodies}, spec)
        spec.flush()
        done = subprocess.run(
            [sys.executable, "-m", "tools.bench.loadgen", spec.name],
            cwd=procs.ROOT,
            capture_output=True,
            text=True,
            timeout=seconds + 120,
            check=True,
        )
    return list(json.loads(done.stdout))


def _terminal_times(observer: Observer, order_ids: list[str], timeout: float) -> dict[str, float]:
    """When each order's saga reached its terminal state (waited for, with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        rows = observer.query(
            "SELECT o.id::text, extract(epoch FROM s.updated_at) FROM orders_order o "
            "JOIN saga_sagainstance s ON s.id = o.saga_id WHERE o.id = ANY(%s::uuid[]) AND s.status IN %s",
            [order_ids, TERMINAL],
        )
        if len(rows) == len(order_ids):
            return {order_id: float(at) for order_id, at in rows}
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(order_ids) - len(rows)} sagas of the end-to-end run still moving")
        time.sleep(0.25)


def _percentile(sorted_values: list[float], percent: float) -> float:
    if len(sorted_values) < 2:
        return sorted_values[0] if sorted_values else float("nan")
    return statistics.quantiles(sorted_values, n=100, method="inclusive")[int(percent) - 1]


def sustained_rate(runs: list[RateRun]) -> float:
    """The highest rate sustained (every order accepted, p99 under its limit); 0 if none."""
    return max((r.rate for r in runs if r.sustained), default=0.0)


def at_half(runs: list[RateRun], sustained: float) -> RateRun:
    """The run at the highest rate not above half the sustained rate (the targets' operating point),
    or at the lowest rate measured if none is that low (the report names the rate)."""
    below = [r for r in runs if r.rate <= sustained / 2]
    return max(below, key=lambda r: r.rate) if below else min(runs, key=lambda r: r.rate)
