"""The report: the table on stdout and the same figures as JSON. A target missed is printed as
MISS and nothing more: the benchmark measures, it does not fail. No Django."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Report = dict[str, Any]


@dataclass(frozen=True)
class Target:
    key: str
    label: str
    text: str
    met: Callable[[float], bool]


TARGETS = (
    Target("engine_ratio", "engine / ceiling", ">= 50 %", lambda v: v >= 0.5),
    Target("commits_per_saga", "commits per saga", "<= 7", lambda v: v <= 7),
    Target("savepoints_per_saga", "savepoint statements per saga", "0", lambda v: v == 0),
    Target("e2e_sustained_per_s", "e2e sustained rate", ">= 80/s", lambda v: v >= 80),
    Target("e2e_p50_ms", "e2e p50 at half the sustained rate (*)", "<= 50 ms", lambda v: v <= 50),
    Target("e2e_p99_ms", "e2e p99 at half the sustained rate (*)", "<= 250 ms", lambda v: v <= 250),
    Target("burst_extra_doorbells_pct", "extra doorbells in a burst", "<= 5 %", lambda v: v <= 5),
    Target("relay_msgs_per_s", "relay throughput", ">= 20,000 msg/s", lambda v: v >= 20_000),
    Target("relay_lag_p99_ms", "relay lag p99 under engine load", "<= 100 ms", lambda v: v <= 100),
    Target("grown_ratio", "grown / empty throughput", ">= 90 %", lambda v: v >= 0.9),
    Target("rss_growth_pct", "worker RSS growth", "<= 10 %", lambda v: v <= 10),
)


def verdicts(report: Report) -> dict[str, str]:
    """PASS, MISS or n/a (not measured) for each target."""
    out = {}
    for target in TARGETS:
        value = report.get(target.key)
        if isinstance(value, int | float) and not math.isnan(value):
            out[target.key] = "PASS" if target.met(value) else "MISS"
        else:
            out[target.key] = "n/a"
    return out


def table(report: Report) -> str:
    ceiling = report.get("ceiling_sagas_per_s") or float("nan")
    s = report["settings"]
    lines = [
        f"saga shop benchmark {report['started_at']}  ({report['machine']['cores']} cores, "
        f"{report['machine']['memory_gb']:.1f} GB; Python {report['versions']['python']}, "
        f"PostgreSQL {report['versions']['postgres']}, Django {report['versions']['django']}, "
        f"Celery {report['versions']['celery']})",
        f"workers: {s['workers']} x concurrency {s['concurrency']} (+ beat); web: gunicorn -w {s['web_workers']}",
        f"sizes: {s['sagas']:,} sagas per engine and ceiling run; rates {', '.join(f'{r:g}' for r in s['rates'])}/s "
        f"for {s['rate_seconds']:g} s each; {s['relay_messages']:,} relay messages; {s['grown']:,} finished sagas "
        f"for growth; RSS over {s['rss_sagas']:,} sagas",
        "",
        f"{'figure':<46} {'value':>14} {'/ ceiling':>10}",
    ]

    def row(label: str, value: Any, unit: str = "", ratio: bool = False) -> None:
        shown = "n/a" if value is None else f"{value:,.1f}{unit}" if isinstance(value, float) else f"{value}{unit}"
        versus = f"{value / ceiling:.0%}" if ratio and isinstance(value, float) else ""
        lines.append(f"{label:<46} {shown:>14} {versus:>10}".rstrip())

    for processes, rate in report["ceiling_by_processes"].items():
        row(f"ceiling, SQL only, {processes} processes (sagas/s)", rate, ratio=True)
    row("  machine CPU per saga (ms, all processes)", report["ceiling_machine_cpu_ms_per_saga"])
    row("engine, happy path (sagas/s)", report["engine_sagas_per_s"], ratio=True)
    refusals = f"engine, {s['refusals']:.0%} refusals compensating (sagas/s)"
    row(refusals, report["engine_refusals_sagas_per_s"], ratio=True)
    row("  commits per saga (server)", report["commits_per_saga"])
    row("  statements per saga (server)", report["statements_per_saga"])
    row("  savepoint statements per saga (server)", report["savepoints_per_saga"])
    row("  advance_saga tasks per saga", report["tasks_per_saga"])
    row("  machine CPU per saga (ms, all processes)", report["machine_cpu_ms_per_saga"])
    row("  of which the workers' (ms)", report["worker_cpu_ms_per_saga"])
    row("  extra doorbells", report["extra_doorbells_pct"], " %")
    for run in report["e2e_runs"]:
        label = f"e2e {run['rate']:g}/s: p50 / p95 / p99 ms"
        lines.append(f"{label:<46} {run['p50_ms']:,.0f} / {run['p95_ms']:,.0f} / {run['p99_ms']:,.0f}")
    row("e2e highest rate with p99 < 1 s (orders/s)", report["e2e_sustained_per_s"])
    row(f"  web CPU per order at {report['e2e_at_rate']:g}/s (ms, gunicorn)", report["web_cpu_ms_per_order"])
    row("relay throughput (messages/s)", report["relay_msgs_per_s"])
    lag = f"{report['relay_lag_p50_ms']:,.0f} / {report['relay_lag_p99_ms']:,.0f}"
    row("relay lag under engine load p50 / p99 (ms)", lag)
    row(f"engine with {s['grown']:,} finished sagas (sagas/s)", report["engine_grown_sagas_per_s"], ratio=True)
    rss = f"{report['rss_before_mb']:,.0f} / {report['rss_after_mb']:,.0f}"
    row(f"worker RSS before / after {s['rss_sagas']:,} sagas (MB)", rss)
    row(f"  extra doorbells in that burst of {s['rss_sagas']:,}", report["burst_extra_doorbells_pct"], " %")
    if "services" in report:
        lines += side_by_side(report, report["services"])
    lines += _ceiling_differences(report)
    lines += [f"WARNING: {run} run: {n} sagas FAILED" for run, n in _failures(report).items() if n]
    lines += ["", f"{'target':<46} {'wanted':>16} {'measured':>12}  verdict"]
    marks = verdicts(report)
    for target in TARGETS:
        value = report.get(target.key)
        shown = "n/a" if value is None else f"{value:,.2f}"
        lines.append(f"{target.label:<46} {target.text:>16} {shown:>12}  {marks[target.key]}")
    if report.get("e2e_at_rate") is not None:
        lines.append(f"(*) measured at {report['e2e_at_rate']:g} orders/s")
    return "\n".join(lines)


# The figures both topologies measure: (label, key, unit). The services topology's commits and
# statements are those of its four databases together; its machine CPU counts every process.
COMPARED = (
    ("engine, happy path (sagas/s)", "engine_sagas_per_s"),
    ("  commits per saga (server, every database)", "commits_per_saga"),
    ("  statements per saga (server, every database)", "statements_per_saga"),
    ("  savepoint statements per saga (server)", "savepoints_per_saga"),
    ("  advance_saga tasks per saga", "tasks_per_saga"),
    ("  machine CPU per saga (ms, all processes)", "machine_cpu_ms_per_saga"),
    ("  of which the workers' (ms)", "worker_cpu_ms_per_saga"),
    ("  of which PostgreSQL's (ms)", "postgres_cpu_ms_per_saga"),
    ("  of which the Kafka broker's (ms)", "broker_cpu_ms_per_saga"),
    ("  of which the relays' (ms)", "relays_cpu_ms_per_saga"),
    ("  of which the participants' consumers' (ms)", "participants_cpu_ms_per_saga"),
    ("  of which consume_events' (ms)", "consume_events_cpu_ms_per_saga"),
    ("one saga alone, placed to finished (ms, median)", "alone_ms"),
    ("e2e highest rate sustained (orders/s)", "e2e_sustained_per_s"),
    ("  sustained: every order accepted, p99 under (ms)", "e2e_p99_limit_ms"),
)


def side_by_side(monolith: Report, services: Report) -> list[str]:
    """The services topology's figures beside the monolith's, and the ratio services / monolith."""
    lines = [
        "",
        f"services topology (a database per context, every participant remote through Kafka; "
        f"{services['sagas']:,} sagas in its engine run)",
        f"{'figure':<46} {'monolith':>14} {'services':>14} {'services/monolith':>18}",
    ]

    def row(label: str, mono: Any, serv: Any, ratio: float | None) -> None:
        shown = f"{ratio:.2f}" if ratio is not None and math.isfinite(ratio) else ""
        lines.append(f"{label:<46} {mono:>14} {serv:>14} {shown:>18}".rstrip())

    by_context = services["commits_per_saga_by_context"]
    for label, key in COMPARED:
        mono, serv = monolith.get(key), services.get(key)
        row(label, _number(mono), _number(serv), _ratio(serv, mono))
        if key == "commits_per_saga":
            lines.append(f"    {' / '.join(by_context)}: {' / '.join(f'{n:,.1f}' for n in by_context.values())}")
    by_rate = {run["rate"]: run for run in monolith["e2e_runs"]}
    for run in services["e2e_runs"]:
        mono_run = by_rate.get(run["rate"])
        mono = f"{mono_run['p50_ms']:,.0f} / {mono_run['p99_ms']:,.0f}" if mono_run else "n/a"
        ratio = _ratio(run["p50_ms"], mono_run["p50_ms"]) if mono_run else None
        row(f"e2e {run['rate']:g}/s: p50 / p99 ms", mono, f"{run['p50_ms']:,.0f} / {run['p99_ms']:,.0f}", ratio)
        web = mono_run["web_cpu_ms_per_order"] if mono_run else None
        row(
            f"  web CPU per order at {run['rate']:g}/s (ms, gunicorn)",
            _number(web),
            _number(run["web_cpu_ms_per_order"]),
            _ratio(run["web_cpu_ms_per_order"], web),
        )
    return lines + _hops(services["hops"])


# The segments of a services saga alone (tools/bench/hops.py), as the table names them.
HOPS = (
    ("to_first_command", "placed -> first command (doorbell, first step)"),
    ("orders_relay", "step's commit, orders' relay -> Kafka"),
    ("to_participant", "Kafka -> the participant's inbox"),
    ("participant", "the participant's transaction -> reply"),
    ("participant_relay", "the participant's relay -> Kafka"),
    ("to_orders", "Kafka -> orders' inbox (consume_events)"),
    ("orders_next", "doorbell, step again -> next command (or end)"),
)


def _hops(hops: Report) -> list[str]:
    """Where a services saga's time goes, alone: each remote step's round trip, mean ms."""
    steps = hops["remote_steps"]
    round_trip = sum(hops[key] for key, _label in HOPS[1:])
    lines = [
        "",
        f"a services saga alone: {steps:g} remote steps of {round_trip:,.0f} ms each (mean ms per step)",
        f"  {HOPS[0][1]:<60} {hops[HOPS[0][0]]:>8,.0f}   (once a saga)",
    ]
    lines += [f"  {label:<60} {hops[key]:>8,.0f}" for key, label in HOPS[1:]]
    return lines


def _number(value: Any) -> str:
    return f"{value:,.1f}" if isinstance(value, int | float) and not math.isnan(value) else "n/a"


def _ratio(value: Any, reference: Any) -> float | None:
    numbers = isinstance(value, int | float) and isinstance(reference, int | float)
    return value / reference if numbers and abs(reference) >= 0.05 else None  # none of a reference shown as 0.0


def _ceiling_differences(report: Report) -> list[str]:
    """A warning for each table where the ceiling writes other rows per saga than the engine."""
    ceiling, engine = report["ceiling_rows_per_saga"], report["engine_rows_per_saga"]
    return [
        f"WARNING: {table}: the ceiling writes {ceiling[table]:.2f} rows per saga, the engine {engine[table]:.2f}"
        for table in ceiling
        if abs(ceiling[table] - engine[table]) > 0.01
    ]


def _failures(report: Report) -> dict[str, int]:
    """Sagas of the engine runs that stopped for an operator: none is designed to."""
    return {
        "happy": report.get("engine_outcomes", {}).get("FAILED", 0),
        "refusals": report.get("engine_refusals_outcomes", {}).get("FAILED", 0),
        "services topology's happy": report.get("services", {}).get("engine_outcomes", {}).get("FAILED", 0),
    }
