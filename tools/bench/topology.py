"""The services topology (SHOP_TOPOLOGY=services, docs/topology.md), measured in the same run as the
monolith: the engine's happy path and the end-to-end ladder, with a database per context and every
participant remote, each context's `run_participant` and `relay_outbox` in processes of their own,
orders' relay and `consume_events` beside the workers.

Django reads its settings once per process, and they say which topology it is: so the parent
(`run`) makes the four databases of the run's own on the server and measures in a child process
(`python -m tools.bench.topology SPEC OUT`), set up as the services topology's gateway (orders)."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from tools import procs
from tools.procs import Proc, with_children

from .console import log
from .processes import CpuMeter, Processes
from .server import Observer

Report = dict[str, Any]
PARTICIPANT_CONTEXTS = ("customers", "inventory", "payments")
CONTEXTS = ("orders", *PARTICIPANT_CONTEXTS)


def run(args: argparse.Namespace, run_id: str, server_url: str, logdir: Path) -> Report:
    """The services topology's figures (the monolith's keys), measured by a child process on a
    database per context, `bench_<run_id>_services_<context>`, dropped at the end."""
    services_id = f"{run_id}_services"
    names = {context: f"bench_{services_id}_{context}" for context in CONTEXTS}
    spec_path, out_path = logdir / "services-spec.json", logdir / "services-report.json"
    with ExitStack() as databases:
        urls = {
            context: databases.enter_context(procs.run_database(server_url, name, keep=args.keep_database, log=log))
            for context, name in names.items()
        }
        log(f"services topology: databases {', '.join(names.values())}")
        spec = {"args": vars(args), "run_id": services_id, "logdir": str(logdir / "services"), "databases": names}
        spec_path.write_text(json.dumps(spec, default=str))
        env = {
            **os.environ,
            "SHOP_TOPOLOGY": "services",
            "SHOP_CONTEXT": "orders",
            **{f"{context.upper()}_DATABASE_URL": url for context, url in urls.items()},
        }
        argv = [sys.executable, "-m", "tools.bench.topology", str(spec_path), str(out_path)]
        subprocess.run(argv, env=env, cwd=procs.ROOT, check=True)
    return dict(json.loads(out_path.read_text()))


def main(spec_path: Path, out_path: Path) -> None:
    """The child: measure the services topology, write its figures to `out_path` as JSON."""
    from .phases import harness

    spec = json.loads(spec_path.read_text())
    args = argparse.Namespace(**spec["args"])
    args.sagas, args.rates = args.services_sagas, args.services_rates  # the phases' runs, at this topology's sizes
    logdir = Path(spec["logdir"])
    logdir.mkdir(parents=True, exist_ok=True)
    orders_url = os.environ["ORDERS_DATABASE_URL"]
    with harness(spec["run_id"], orders_url, logdir, counted=list(spec["databases"].values())) as (
        observer,
        processes,
        _topics,
    ):
        report = _measure(args, observer, processes, spec["databases"])
    out_path.write_text(json.dumps(report, default=str))


def _measure(args: argparse.Namespace, observer: Observer, processes: Processes, databases: dict[str, str]) -> Report:
    from . import hops
    from .e2e import SUSTAINED_P99_MS
    from .phases import WARM_UP, end_to_end, engine_happy, sagas_alone, warm_up_engine
    from .workload import seed

    catalog = seed("bench")  # through the gateway: each context's rows in its own database
    messaging = _messaging_processes(processes)
    workers = processes.workers(args.workers, args.concurrency)
    processes.beat()
    warm_up_engine(observer, catalog, min(WARM_UP, args.sagas), args.timeout)
    commits_before, own_before = observer.commits_by_database(), observer.transactions
    meter = CpuMeter(
        lambda: {kind: [pid for p in procs for pid in with_children(p.pid)] for kind, procs in messaging.items()}
    )
    report = engine_happy(args, observer, workers, catalog)
    report.update({f"{kind}_cpu_ms_per_saga": ms for kind, ms in meter.ms_per(args.sagas).items()})
    commits = observer.commits_by_database()
    commits[databases["orders"]] -= observer.transactions - own_before  # the observer's polls
    report["commits_per_saga_by_context"] = {
        context: (commits[name] - commits_before[name]) / args.sagas for context, name in databases.items()
    }
    alone, saga_ids = sagas_alone(args, observer, catalog)
    urls = {context: os.environ[f"{context.upper()}_DATABASE_URL"] for context in CONTEXTS}
    report.update(alone, hops=hops.breakdown(urls, saga_ids))
    # A saga takes longer alone here than the monolith's p99 limit allows: a rate is sustained
    # while its p99 stays within as much more than a saga alone.
    report.update(end_to_end(args, observer, processes, catalog, alone["alone_ms"] + SUSTAINED_P99_MS))
    report["sagas"] = args.sagas
    return report


def _messaging_processes(processes: Processes) -> dict[str, list[Proc]]:
    """What the services topology runs beside orders' workers, by kind: each context's relay,
    each participant's consumer, and orders' consumer of the participants' replies."""
    return {
        "relays": [processes.relay(context) for context in CONTEXTS],
        "participants": [processes.participant(context) for context in PARTICIPANT_CONTEXTS],
        "consume_events": [processes.event_consumer()],
    }


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
