"""`make bench`: every benchmark in one run, on a database of the run's own.

1. a database `bench_<time>` on the given server (dropped at the end), migrated; a Celery queue
   and Kafka topics named after the run; customers and products (tools/bench/workload.py);
2. the ceiling: the sagas' SQL alone from 2 and 4 processes (tools/bench/ceiling.py);
3. the engine: sagas placed as the API does, run by Celery workers (and beat, as the Procfile
   runs them): happy path, then with refusals and the relay running, for its lag (tools/bench/engine.py);
4. the relay alone (tools/bench/relay.py); end to end through gunicorn at fixed rates (tools/bench/e2e.py);
5. the engine again with many finished sagas in the tables (tools/bench/growth.py), and the workers'
   memory across many sagas;
6. the services topology (SHOP_TOPOLOGY=services: a database per context, every participant
   remote through Kafka): its engine and end to end, on four databases of the run's own
   (tools/bench/topology.py);
7. the table on stdout, both topologies side by side, the same as JSON in reports/bench-<time>.json.
"""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path

from tools import procs

from .console import log
from .phases import run_all


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__)
    add = parser.add_argument
    add("--sagas", type=int, default=1000, help="sagas per engine run and per ceiling run (default 1000)")
    add("--ceiling-processes", default="2,4", help="processes of the ceiling, the first is the reference (default 2,4)")
    add("--refusals", type=float, default=0.2, help="share of refused orders in the second engine run (default 0.2)")
    add("--workers", type=int, default=1, help="Celery worker processes (default 1, as the Procfile)")
    add("--concurrency", type=int, default=2, help="pool processes per worker (default 2, as the Procfile)")
    add("--rates", default="5,10,20,40,80,120", help="end-to-end rates, orders/s (default 5,10,20,40,80,120)")
    add("--rate-seconds", type=float, default=10, help="seconds of load per rate (default 10)")
    add("--web-workers", type=int, default=3, help="gunicorn workers (default 3)")
    add("--relay-messages", type=int, default=20_000, help="messages of the relay benchmark (default 20000)")
    # A million finished sagas take about 5 minutes to write on 2 cores, 100,000 sagas through the
    # engine about two hours: the defaults keep `make bench` near 10 minutes.
    add("--grown", type=int, default=200_000, help="finished sagas added before the growth run (default 200000)")
    add("--rss-sagas", type=int, default=2000, help="sagas between the two RSS readings (default 2000)")
    add(
        "--services-sagas",
        type=int,
        default=500,
        help="sagas of the services topology's engine run (default 500; 0: the monolith alone)",
    )
    add(
        "--services-rates",
        default="1,3,5,10,20,40",
        help="the services topology's end-to-end rates (default 1,3,5,10,20,40)",
    )
    add("--timeout", type=float, default=900, help="seconds a run may go without a saga settling (default 900)")
    add("--reports", type=Path, default=procs.ROOT / "reports", help="where the JSON report goes")
    add("--keep-database", action="store_true", help="keep the run's database for inspection")
    args = parser.parse_args(argv)
    args.ceiling_processes = [int(n) for n in args.ceiling_processes.split(",")]
    args.rates = [float(r) for r in args.rates.split(",")]
    args.services_rates = [float(r) for r in args.services_rates.split(",")]
    return args


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    for name in ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS"):
        if not os.environ.get(name):
            log(f"{name} is not set: run `make bench` (or `python -m tools.devstack exec -- python -m tools.bench`)")
            return 2
    # Both topologies, whatever the caller's SHOP_TOPOLOGY: the monolith in this process, the
    # services topology in a child process of its own (tools/bench/topology.py).
    os.environ["SHOP_TOPOLOGY"] = "monolith"
    started = datetime.now(UTC)
    run_id = f"{started:%Y%m%d_%H%M%S}_{os.getpid()}"  # two runs at once get two databases
    logdir = args.reports / f"bench-{run_id}-logs"
    logdir.mkdir(parents=True, exist_ok=True)
    run_all(args, run_id, started, os.environ["DATABASE_URL"], logdir)
    return 0
