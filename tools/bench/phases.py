"""The benchmarks in order, on the run's database, and the report they make."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tools import procs
from tools.procs import Proc

from .console import log
from .processes import CpuMeter, Processes, cpu_seconds, rss_bytes, server_pids
from .server import Observer

if TYPE_CHECKING:  # bench.workload needs Django set up, which run_all does
    from .workload import Catalog

Report = dict[str, Any]
ALONE = 10  # sagas run one at a time, for a saga's latency with nothing queued
WARM_UP = 30  # orders placed before the engine and the web are measured (no more than a run's sagas)
# Tables the sagas fill; emptied before the engine's first run, so that it starts on empty tables.
SAGA_TABLES = (
    "orders_order",
    "orders_orderline",
    "saga_sagainstance",
    "saga_sagastep",
    "saga_outboxmessage",
    "inventory_stockreservation",
    "inventory_stockreservationline",
    "customers_fundshold",
    "payments_payment",
)


def shared_env(run_id: str, database_url: str) -> dict[str, str]:
    """What the bench and every process it starts share: the run's database and queue, production's
    DEBUG (off: no query log in memory) and no rate limit on placing orders (one token places them all)."""
    return {
        "DJANGO_SETTINGS_MODULE": "shop.settings",
        "DATABASE_URL": database_url,
        "SHOP_CELERY_QUEUE": f"bench-{run_id}",
        "KAFKA_CONSUMER_GROUP": f"bench-{run_id}",
        "DJANGO_DEBUG": "false",
        "SHOP_ORDER_RATE": "",
        "PYTHONUNBUFFERED": "1",
    }


def run_all(args: argparse.Namespace, run_id: str, started: datetime, server_url: str, logdir: Path) -> None:
    """The monolith's benchmarks on a database of the run's own, then the services topology's
    (tools/bench/topology.py) on four more; one report of both."""
    from . import topology

    with procs.run_database(server_url, f"bench_{run_id}", keep=args.keep_database, log=log) as database_url:
        log(f"database bench_{run_id}, process logs in {logdir}")
        with harness(run_id, database_url, logdir) as (observer, processes, topics):
            report = _measure(args, observer, processes, database_url, topics)
            processes.stop_all()  # the services topology is measured on a machine the monolith left quiet
            report.update(_context(args, observer, started))
    if args.services_sagas:
        report["services"] = topology.run(args, run_id, server_url, logdir)
    _publish(report, args.reports / f"bench-{run_id}.json")


@contextmanager
def harness(
    run_id: str, database_url: str, logdir: Path, counted: Sequence[str] = ()
) -> Iterator[tuple[Observer, Processes, dict[str, str]]]:
    """Django set up in this process on the run's database(s), the observer of the `counted`
    databases (default: that one), and the processes to start, stopped at the end."""
    os.environ.update(shared_env(run_id, database_url))
    children_log_level = os.environ.get("LOG_LEVEL", "INFO")  # the workers' INFO lines count their tasks
    os.environ["LOG_LEVEL"] = "WARNING"  # not a line per order placed here
    topics = _django_for_run(run_id)
    topics_env = {f"KAFKA_TOPIC_{role.upper()}": name for role, name in topics.items()}
    env = procs.with_venv_on_path({**os.environ, **topics_env, "LOG_LEVEL": children_log_level})
    observer = Observer(database_url, counted)
    processes = Processes(env, logdir)
    try:
        yield observer, processes, topics
    finally:
        processes.stop_all()
        observer.close()
        os.environ["LOG_LEVEL"] = children_log_level  # for the processes started after (the services topology's)


def _django_for_run(run_id: str) -> dict[str, str]:
    """Django set up in this process on the run's database(s), each migrated; the run's Kafka
    topics, its own (`bench-<run_id>.<role>`), by role."""
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from saga.messaging.catalog import catalog

    for alias in settings.DATABASES:  # the monolith's one; the services topology's, one per context
        call_command("migrate", database=alias, verbosity=0)
    settings.KAFKA_TOPICS = {role: f"bench-{run_id}.{role}" for role in catalog.roles()}
    return dict(settings.KAFKA_TOPICS)


def _measure(
    args: argparse.Namespace, observer: Observer, processes: Processes, database_url: str, topics: dict[str, str]
) -> Report:
    from .workload import seed

    catalog = seed("bench")
    seeded = _rows(observer)  # customers and products announced themselves in the outbox
    report = _ceiling(args, catalog, database_url, topics)
    report["ceiling_rows_per_saga"] = _rows_per_saga(observer, args.sagas * len(args.ceiling_processes), seeded)
    observer.query(f"TRUNCATE {', '.join(SAGA_TABLES)} CASCADE")  # the engine starts on empty tables
    workers = processes.workers(args.workers, args.concurrency)
    processes.beat()
    warm_up = min(WARM_UP, args.sagas)
    warm_up_engine(observer, catalog, warm_up, args.timeout)
    report.update(engine_happy(args, observer, workers, catalog))
    report["engine_rows_per_saga"] = _rows_per_saga(observer, warm_up + args.sagas, dict.fromkeys(SAGA_TABLES, 0))
    report["engine_ratio"] = report["engine_sagas_per_s"] / report["ceiling_sagas_per_s"]
    report.update(_relay(args, observer))
    relay_proc = processes.relay()
    report.update(_refusals_and_relay_lag(args, observer, workers, catalog))
    report.update(sagas_alone(args, observer, catalog)[0])
    report.update(end_to_end(args, observer, processes, catalog))
    processes.stop(relay_proc)
    report.update(_growth(args, observer, workers, catalog))
    report["grown_ratio"] = report["engine_grown_sagas_per_s"] / report["engine_sagas_per_s"]
    return report


def _ceiling(args: argparse.Namespace, catalog: Catalog, database_url: str, topics: dict[str, str]) -> Report:
    from . import ceiling
    from .workload import plan

    runs = {}
    for n in args.ceiling_processes:
        log(f"ceiling: {args.sagas} sagas of SQL from {n} processes")
        runs[n] = ceiling.run(database_url, plan(catalog, args.sagas, seed=n), n, topics)
    first = runs[args.ceiling_processes[0]]
    return {
        "ceiling_by_processes": {str(n): r.sagas_per_s for n, r in runs.items()},
        "ceiling_sagas_per_s": first.sagas_per_s,
        "ceiling_machine_cpu_ms_per_saga": first.machine_cpu_ms_per_saga,
    }


def engine_happy(args: argparse.Namespace, observer: Observer, workers: list[Proc], catalog: Catalog) -> Report:
    """The happy run, with nothing but the workers and beat on the database."""
    from . import engine
    from .workload import plan

    log(f"engine: {args.sagas} sagas, happy path")
    servers = CpuMeter(server_pids)
    happy = engine.run(observer, workers, plan(catalog, args.sagas, seed=10), args.timeout)
    servers_cpu = servers.ms_per(args.sagas)
    return {
        "postgres_cpu_ms_per_saga": servers_cpu["postgres"],
        "broker_cpu_ms_per_saga": servers_cpu["broker"],
        "engine_sagas_per_s": happy.sagas_per_s,
        "commits_per_saga": happy.commits_per_saga,
        "statements_per_saga": happy.statements_per_saga,
        "savepoints_per_saga": happy.savepoints_per_saga,
        "tasks_per_saga": happy.tasks_per_saga,
        "worker_cpu_ms_per_saga": happy.worker_cpu_ms_per_saga,
        "machine_cpu_ms_per_saga": happy.machine_cpu_ms_per_saga,
        "extra_doorbells_pct": (happy.tasks_per_saga - 1) * 100,
        "engine_outcomes": happy.outcomes,
    }


def sagas_alone(args: argparse.Namespace, observer: Observer, catalog: Catalog) -> tuple[Report, list[str]]:
    """A saga's own latency: ALONE sagas, each placed once the one before has finished; the median
    milliseconds from placing to the end, and the sagas' ids."""
    from .workload import one_at_a_time, plan

    log(f"one saga at a time: {ALONE} sagas")
    saga_ids, latencies = one_at_a_time(observer, plan(catalog, ALONE, seed=14), args.timeout)
    return {"alone_ms": statistics.median(latencies)}, saga_ids


def _relay(args: argparse.Namespace, observer: Observer) -> Report:
    from . import relay

    # The happy runs' messages are not the relay benchmark's business: count them as sent.
    observer.query("UPDATE saga_outboxmessage SET sent_at = now() WHERE sent_at IS NULL")
    log(f"relay: {args.relay_messages} messages")
    return {"relay_msgs_per_s": relay.throughput(args.relay_messages)}


def _rows(observer: Observer) -> dict[str, int]:
    counts = observer.query(" UNION ALL ".join(f"SELECT '{t}', count(*) FROM {t}" for t in SAGA_TABLES))
    return dict(counts)


def _rows_per_saga(observer: Observer, sagas: int, before: dict[str, int]) -> dict[str, float]:
    """Rows per saga written to each table the sagas fill since `before`: the ceiling's must be the
    engine's (the report says when they are not, e.g. after an engine change the ceiling lacks)."""
    return {table: (count - before[table]) / sagas for table, count in _rows(observer).items()}


def _refusals_and_relay_lag(
    args: argparse.Namespace, observer: Observer, workers: list[Proc], catalog: Catalog
) -> Report:
    from . import engine, relay
    from .workload import plan

    log(f"engine: {args.sagas} sagas, {args.refusals:.0%} refused, with the relay running")
    refused = engine.run(observer, workers, plan(catalog, args.sagas, refusals=args.refusals, seed=11), args.timeout)
    p50, p99 = relay.lag_ms(observer, refused.first_start, refused.last_end, args.timeout)
    return {
        "engine_refusals_sagas_per_s": refused.sagas_per_s,
        "engine_refusals_outcomes": refused.outcomes,
        "relay_lag_p50_ms": p50,
        "relay_lag_p99_ms": p99,
    }


def end_to_end(
    args: argparse.Namespace,
    observer: Observer,
    processes: Processes,
    catalog: Catalog,
    p99_limit_ms: float | None = None,
) -> Report:
    """The ladder of rates; a rate is sustained while its p99 is under `p99_limit_ms` (default
    e2e.SUSTAINED_P99_MS)."""
    from . import e2e
    from .workload import plan

    web, url = processes.web(args.web_workers)
    token = _token()
    # Each gunicorn worker's first requests load what Django loads lazily (URLs, DRF, the schema).
    warm_up = min(WARM_UP, args.sagas)
    e2e.run_rate(observer, url, token, plan(catalog, warm_up, seed=8), 10, warm_up / 10, args.timeout)
    web_cpu_ms: dict[float, float] = {}  # by rate: gunicorn's CPU time per order accepted
    limit = e2e.SUSTAINED_P99_MS if p99_limit_ms is None else p99_limit_ms

    def measure(rate: float) -> e2e.RateRun:
        log(f"end to end: {rate:g} orders/s for {args.rate_seconds:g} s")
        cpu_before = cpu_seconds([web])
        planned = plan(catalog, 500, seed=int(rate))
        run = e2e.run_rate(observer, url, token, planned, rate, args.rate_seconds, args.timeout, limit)
        web_cpu_ms[rate] = (cpu_seconds([web]) - cpu_before) * 1000 / max(run.accepted, 1)
        return run

    runs = []
    for rate in sorted(args.rates):
        runs.append(measure(rate))
        if not runs[-1].sustained:  # higher rates would only pile up a longer backlog to wait for
            log(f"end to end: {rate:g}/s is not sustained (p99 {runs[-1].p99_ms:,.0f} ms); no higher rate tried")
            break
    if len(runs) >= 2 and not runs[-1].sustained:  # the ladder doubles: one rate halfway up it too
        runs.append(measure(round((runs[-2].rate + runs[-1].rate) / 2)))
    runs.sort(key=lambda run: run.rate)
    processes.stop(web)
    sustained = e2e.sustained_rate(runs)
    half = e2e.at_half(runs, sustained)
    return {
        "e2e_runs": [vars(r) | {"sustained": r.sustained, "web_cpu_ms_per_order": web_cpu_ms[r.rate]} for r in runs],
        "e2e_sustained_per_s": sustained,
        "e2e_p99_limit_ms": runs[0].p99_limit_ms,
        "e2e_at_rate": half.rate,
        "e2e_p50_ms": half.p50_ms,
        "e2e_p99_ms": half.p99_ms,
        "web_cpu_ms_per_order": web_cpu_ms[half.rate],
    }


def warm_up_engine(observer: Observer, catalog: Catalog, sagas: int, timeout: float) -> None:
    """A few sagas first, unmeasured: the pool processes' first tasks import and connect."""
    from .workload import place, plan, wait_until_settled

    log(f"engine: {sagas} sagas to warm up")
    wait_until_settled(observer, place(plan(catalog, sagas, seed=9))[1], timeout)


def _growth(args: argparse.Namespace, observer: Observer, workers: list[Proc], catalog: Catalog) -> Report:
    from . import engine, growth
    from .workload import plan

    log(f"growth: adding {args.grown:,} finished sagas")
    began = time.monotonic()
    growth.add_finished_sagas(observer, args.grown)
    log(f"growth: added in {time.monotonic() - began:.0f} s; engine: {args.sagas} sagas")
    grown = engine.run(observer, workers, plan(catalog, args.sagas, seed=12), args.timeout)
    before = rss_bytes(workers)
    log(f"memory: {args.rss_sagas:,} sagas")
    # Placed faster than the workers run them: most wait in the queue longer than SAGA_STALL_AFTER.
    burst = engine.run(observer, workers, plan(catalog, args.rss_sagas, seed=13), args.timeout)
    after = rss_bytes(workers)
    return {
        "engine_grown_sagas_per_s": grown.sagas_per_s,
        "burst_extra_doorbells_pct": (burst.tasks_per_saga - 1) * 100,
        "rss_before_mb": before / 2**20,
        "rss_after_mb": after / 2**20,
        "rss_growth_pct": (after - before) / before * 100,
    }


def _token() -> str:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.create_superuser("bench", "bench@example.com", None)
    return str(Token.objects.create(user=user).key)


def _context(args: argparse.Namespace, observer: Observer, started: datetime) -> Report:
    import celery
    import django

    return {
        "started_at": started.isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "memory_gb": _memory_bytes() / 2**30, "platform": platform.platform()},
        "versions": {
            "python": platform.python_version(),
            "postgres": observer.server_version(),
            "django": django.get_version(),
            "celery": celery.__version__,
        },
        "settings": {
            "sagas": args.sagas,
            "ceiling_processes": args.ceiling_processes,
            "refusals": args.refusals,
            "workers": args.workers,
            "concurrency": args.concurrency,
            "web_workers": args.web_workers,
            "rates": args.rates,
            "rate_seconds": args.rate_seconds,
            "relay_messages": args.relay_messages,
            "grown": args.grown,
            "rss_sagas": args.rss_sagas,
        },
    }


def _memory_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        return int(meminfo.readline().split()[1]) * 1024  # MemTotal, in kB


def _publish(report: Report, path: Path) -> None:
    from .report import table, verdicts

    report["verdicts"] = verdicts(report)
    path.write_text(json.dumps(report, indent=2, default=str))
    print(table(report))
    print(f"\n(report: {path})")
