"""The run's summary as JSON (reports/chaos-<run>.json); tools/chaos/table.py shows it to people."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from django.db.models import Count, QuerySet

from orders.models import Order
from saga.models import ACTIVE, SagaInstance, SagaStatus, SagaStep

from .checks import Invariant, Reading, status_of
from .clients import Record, shape
from .faults import Fault


def summary(
    *,
    run: dict[str, Any],
    record: Record,
    faults: list[Fault],
    reading: Reading,
    quiescence: float | None,
    invariants: list[Invariant],
    kinds: tuple[str, ...],
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
            "by_kind": {kind: _fault_summary(kind, [f for f in faults if f.kind == kind]) for kind in kinds},
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
    """Sagas rolled back neither by a refusal, nor by the customer, the operator or the courier's
    silence: a fault made a step fail for good (its retries exhausted, its worker killed too often)."""
    refused = SagaStep.objects.filter(kind=SagaStep.Kind.ACTION, status=SagaStep.Status.REFUSED).values("saga_id")
    designed = [Order.Reason.ACCEPTANCE_TIMEOUT, Order.Reason.CANCELLED_BY_CUSTOMER, Order.Reason.CANCELLED_BY_OPERATOR]
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
    for key in (
        "takeover_s",
        "seconds",
        "connections",
        "keys_before",
        "orders_before",
        "orders_during",
        "doorbells_lost",
    ):
        values = [f.detail[key] for f in done if key in f.detail]
        if values:
            details[key] = [min(values), max(values)]
    processes = Counter(f.detail["process"] for f in done if "process" in f.detail)
    if len(processes) > 1:
        details["processes"] = dict(processes)
    return details
