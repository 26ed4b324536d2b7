"""The run's summary: a table for people, the same as JSON under reports/ for programs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from django.db.models import Count, QuerySet

from orders.models import Order
from saga.models import ACTIVE, SagaInstance, SagaStatus, SagaStep

from .checks import Invariant, Reading, status_of
from .clients import Record, shape
from .faults import KINDS, Fault


def summary(
    *,
    run: dict[str, Any],
    record: Record,
    faults: list[Fault],
    reading: Reading,
    quiescence: float | None,
    invariants: list[Invariant],
) -> dict[str, Any]:
    orders = list(Order.objects.all())
    known = {p.order_id for p in record.placed} | {
        a.data["id"] for g in record.duplicates for a in g.answers if a.status == 202 and isinstance(a.data, dict)
    }
    statuses = Counter(e.status for e in record.exchanges)
    server_errors = [e for e in record.exchanges if e.status >= 500]
    return {
        "run": run,
        "passed": all(i.passed for i in invariants),
        "orders": {
            "placed": len(orders),
            "per_second": round(len(orders) / run["duration_s"], 1),
            "by_outcome": dict(Counter(status_of(o) for o in orders).most_common()),
            "by_scenario": dict(Counter(p.scenario for p in record.placed).most_common()),
            "rolled_back_by_faults": _rolled_back_by_faults(),
            "duplicate_submissions": sum(len(g.answers) + 1 for g in record.duplicates),
            "duplicate_keys": len(record.duplicates),
            "not_known_to_clients": sum(1 for o in orders if str(o.pk) not in known),
        },
        "faults": {
            "count": len(faults),
            "by_kind": {kind: _fault_summary(kind, [f for f in faults if f.kind == kind]) for kind in KINDS},
            "timeline": [
                {"kind": f.kind, "at_s": f.at, "ended_at_s": f.ended_at, **f.detail, "error": f.error} for f in faults
            ],
        },
        "sagas": {
            "by_status": _by_status(SagaInstance.objects.all()),
            "attempts_by_status": _by_status(SagaStep.objects.all()),
            "failed_attempts_by_cause": _causes(),
            # The evidence for a saga that did not finish well: every attempt of every step.
            "histories_of_stuck_or_failed": _histories(
                SagaInstance.objects.filter(status__in=[*ACTIVE, SagaStatus.FAILED])[:20]
            ),
        },
        "kafka": {
            "deliveries": reading.deliveries,
            "distinct_ids": len(reading.by_id),
            "duplicates": sum(reading.duplicates.values()),
            "duplicates_by_topic": dict(reading.duplicates.most_common()),
            "unreadable": reading.unreadable,
            "read_seconds": reading.seconds,
        },
        "http": {
            "requests": len(record.exchanges),
            "by_status": {str(k): v for k, v in sorted(statuses.items())},
            "server_errors": [
                {"method": e.method, "path": e.path, "status": e.status, "scenario": e.scenario, "error": e.error}
                for e in server_errors[:100]
            ],
            "server_errors_by_route": dict(Counter(f"{e.method} {shape(e.path)} {e.status}" for e in server_errors)),
            "no_answer": statuses.get(0, 0),
        },
        "quiescence_s": quiescence,
        "invariants": [i.as_json() for i in invariants],
    }


def _histories(sagas: Iterable[SagaInstance]) -> dict[str, Any]:
    return {
        str(saga.id): {
            "order": str(saga.aggregate_id),
            "status": saga.status,
            "step": saga.current_step,
            "error": saga.error,
            "updated_at": saga.updated_at.isoformat(),
            "steps": [
                f"{s.started_at:%H:%M:%S.%f} {s.name} {s.kind} #{s.attempt} {s.status} {s.result or ''} {s.error}"
                for s in saga.steps.order_by("id")
            ],
        }
        for saga in sagas
    }


def _rolled_back_by_faults() -> int:
    """Sagas rolled back neither by a refusal, nor by the customer, nor by the courier's silence: a
    fault made a step fail for good (its retries exhausted, its worker killed too often)."""
    refused = SagaStep.objects.filter(kind=SagaStep.Kind.ACTION, status=SagaStep.Status.REFUSED).values("saga_id")
    designed = [Order.Reason.ACCEPTANCE_TIMEOUT, Order.Reason.CANCELLED_BY_CUSTOMER]
    rolled_back = SagaInstance.objects.filter(status=SagaStatus.COMPENSATED).exclude(reason__in=designed)
    return rolled_back.exclude(id__in=refused).count()


def _causes() -> dict[str, int]:
    """Why step attempts failed: the faulty workers' injected errors and hangs, or anything else."""
    causes: Counter[str] = Counter()
    for error in SagaStep.objects.filter(status=SagaStep.Status.FAILED).values_list("error", flat=True):
        name = error.split(":", 1)[0].rsplit(".", 1)[-1]  # the exception's class
        if "before the deadline" in error:
            name = "wait expired"
        causes[{"InjectedFault": "injected", "StepTimeout": "timed out"}.get(name, name)] += 1
    return dict(causes)


def _by_status(rows: QuerySet[Any]) -> dict[str, int]:
    return dict(rows.values("status").annotate(n=Count("id")).order_by("-n").values_list("status", "n"))


def _fault_summary(kind: str, faults: list[Fault]) -> dict[str, Any]:
    done = [f for f in faults if not f.error]
    details: dict[str, Any] = {"count": len(done), "not_injected": len(faults) - len(done)}
    for key in ("takeover_s", "seconds", "connections", "keys_before"):
        values = [f.detail[key] for f in done if key in f.detail]
        if values:
            details[key] = [min(values), max(values)]
    processes = Counter(f.detail["process"] for f in done if "process" in f.detail)
    if len(processes) > 1:
        details["processes"] = dict(processes)
    return details


NOTES = {
    "kill_relay": lambda d: f"standby took over in {_span(d.get('takeover_s'), 's', 2)}",
    "freeze_broker": lambda d: f"SIGSTOP for {_span(d.get('seconds'), 's', 0)}",
    "terminate_db": lambda d: f"{_span(d.get('connections'), 'connections', 0)} each",
    "step_faults": lambda d: f"faulty workers on for {_span(d.get('seconds'), 's', 0)}",
    "flush_redis": lambda d: f"{_span(d.get('keys_before'), 'keys', 0)} flushed",
}


def _span(values: list[float] | None, unit: str, places: int) -> str:
    if not values:
        return "-"
    low, high = (f"{v:.{places}f}" for v in values)
    return f"{low} {unit}" if low == high else f"{low}-{high} {unit}"


def table(report: dict[str, Any]) -> str:
    run, orders, faults = report["run"], report["orders"], report["faults"]
    quiet = report["quiescence_s"]
    lines = [
        f"chaos run {run['id']}: seed {run['seed']}, {run['clients']} clients, "
        f"{run['duration_s']:.0f} s of load and faults",
        f"{'orders placed':<34}{orders['placed']:>7,}  ({orders['per_second']}/s)",
    ]
    lines += [f"  {outcome:<32}{n:>7,}" for outcome, n in orders["by_outcome"].items()]
    lines.append(f"  {'(rolled back by faults)':<32}{orders['rolled_back_by_faults']:>7,}")
    lines.append(f"{'faults injected':<34}{sum(d['count'] for d in faults['by_kind'].values()):>7,}")
    for kind, details in faults["by_kind"].items():
        note = NOTES[kind](details) if kind in NOTES else ""
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
        by_class["no answer" if status == "0" else f"{status[0]}xx"] += n
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
