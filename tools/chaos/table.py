"""The run's summary for people: the table `make chaos` prints (and `python -m tools.chaos --show REPORT`
prints again from a report's JSON). No Django here, so a report can be read anywhere."""

from __future__ import annotations

from collections import Counter
from typing import Any

NOTES = {
    "freeze_broker": lambda d: f"SIGSTOP for {_span(d.get('seconds'), 's', 0)}",
    "terminate_db": lambda d: f"{_span(d.get('connections'), 'connections', 0)} each",
    "step_faults": lambda d: f"faulty workers on for {_span(d.get('seconds'), 's', 0)}",
    "flush_redis": lambda d: f"{_span(d.get('keys_before'), 'keys', 0)} flushed",
    "freeze_redis": lambda d: (
        f"SIGSTOP for {_span(d.get('seconds'), 's', 0)}, "
        f"{_span(d.get('orders_during'), 'orders', 0)} placed in it "
        f"({_span(d.get('orders_before'), 'orders', 0)} in as long before)"
    ),
    "lose_doorbells": lambda d: (
        f"{_span(d.get('doorbells_lost'), 'doorbells', 0)} deleted in {_span(d.get('seconds'), 's', 0)}"
    ),
}


def _takeovers(timeline: list[dict[str, Any]]) -> str:
    """How fast the standby relay took over: with the broker up, and while it was frozen (then the
    standby may be a former leader still waiting for the frozen broker, and nothing can be sent)."""
    freezes = [(f["at_s"], f["ended_at_s"] or f["at_s"]) for f in timeline if f["kind"] == "freeze_broker"]
    up: list[float] = []
    frozen: list[float] = []
    for fault in timeline:
        if fault["kind"] == "kill_relay" and "takeover_s" in fault:
            during = any(start <= fault["at_s"] <= end for start, end in freezes)
            (frozen if during else up).append(fault["takeover_s"])
    note = f"standby took over in {_span([min(up), max(up)] if up else None, 's', 2)}"
    return note + (f" ({_span([min(frozen), max(frozen)], 's', 2)} with the broker frozen)" if frozen else "")


def _span(values: list[float] | None, unit: str, places: int) -> str:
    if not values:
        return "-"
    low, high = (f"{v:.{places}f}" for v in values)
    return f"{low} {unit}" if low == high else f"{low}-{high} {unit}"


def table(report: dict[str, Any]) -> str:
    run, orders, faults = report["run"], report["orders"], report["faults"]
    quiet = report["quiescence_s"]
    lines = [
        f"chaos run {run['id']} ({run.get('topology', 'monolith')}): seed {run['seed']}, {run['clients']} clients, "
        f"{run['duration_s']:.0f} s of load and faults",
        f"{'orders placed':<34}{orders['placed']:>7,}  ({orders['per_second']}/s)",
    ]
    lines += [f"  {outcome:<32}{n:>7,}" for outcome, n in orders["by_outcome"].items()]
    lines.append(f"  {'(rolled back by faults)':<32}{orders['rolled_back_by_faults']:>7,}")
    lines.append(f"{'faults injected':<34}{sum(d['count'] for d in faults['by_kind'].values()):>7,}")
    for kind, details in faults["by_kind"].items():
        base = kind.split(":")[0]  # a fault of a context's (kill_consumer:inventory) is noted as its kind's
        note = _takeovers(faults["timeline"]) if kind == "kill_relay" else NOTES[base](details) if base in NOTES else ""
        if details["not_injected"]:
            note += f" ({details['not_injected']} not injected)"
        lines.append(f"  {kind:<32}{details['count']:>7,}  {note}".rstrip())
    sagas = " · ".join(f"{s} {n:,}" for s, n in report["sagas"]["by_status"].items())
    attempts = report["sagas"]["attempts_by_status"]
    causes = ", ".join(f"{c} {n:,}" for c, n in report["sagas"]["failed_attempts_by_cause"].items())
    trouble = " · ".join(
        f"{s} {attempts[s]:,}" + (f" ({causes})" if s == "FAILED" and causes else "")
        for s in ("FAILED", "CRASHED", "ABANDONED")
        if s in attempts
    )
    kafka, http = report["kafka"], report["http"]
    by_class: Counter[str] = Counter()
    for status, n in http["by_status"].items():
        by_class["no answer" if status == "0" else status if status == "503" else f"{status[0]}xx"] += n
    answers = " · ".join(f"{c} {n:,}" for c, n in sorted(by_class.items()))
    lines += [
        f"{'sagas':<34}{sagas}",
        f"{'step attempts that failed':<34}{trouble or 'none'}",
        f"{'one key sent several times':<34}{orders['duplicate_keys']:>7,}  "
        f"({orders['duplicate_submissions']:,} submissions, the last with another body)",
        f"{'Kafka deliveries':<34}{kafka['deliveries']:>7,}  ({kafka['duplicates']:,} duplicates by id)",
        f"{'HTTP requests':<34}{http['requests']:>7,}  ({answers})",
        f"{'at rest after the faults stopped':<34}" + (f"{quiet:>7.1f} s" if quiet is not None else "   never"),
        "invariants",
    ]
    for invariant in report["invariants"]:
        verdict = "PASS" if invariant["passed"] else "FAIL"
        lines.append(f"  {verdict}  {invariant['name']}  ({invariant['checked']:,} checked)")
        if invariant["note"]:
            lines.append(f"        {invariant['note']}")
        if not invariant["passed"]:
            lines.append(f"        {invariant['violations']:,} violations, e.g.:")
            lines += [f"        - {example}" for example in invariant["examples"][:5]]
    lines.append("RESULT: " + ("PASS" if report["passed"] else "FAIL"))
    return "\n".join(lines)
