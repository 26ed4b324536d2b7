"""A chaos run from start to verdict:

1. a database of the run's own on the given PostgreSQL server (with `--topology services`, one per
   context, each migrated by a process of its context); Kafka topics, a Celery queue and consumer
   groups named after the run; a token for the clients;
2. the stack as real processes (tools/chaos/stack.py), the customers and products through the API;
3. the load (tools/chaos/clients.py) and the faults (tools/chaos/faults.py) for `--duration` seconds;
4. the faults stop and the clients finish; the run waits, with a deadline, for the shop to come to
   rest, stops the stack, reads Kafka until idle and checks the invariants (tools/chaos/checks.py);
5. the summary table on stdout, the same as JSON in reports/; exit 1 on any violation.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import sys
import threading
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from tools import procs

from .stack import (
    CHECKER,
    PARTICIPANT_CONTEXTS,
    TOPOLOGIES,
    Stack,
    database_env,
    django_for_run,
    participant_migrations,
)


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tools.chaos", description=__doc__)
    parser.add_argument(
        "--topology",
        choices=TOPOLOGIES,
        default=os.environ.get("SHOP_TOPOLOGY") or "monolith",
        help="monolith: one database for all; services: a database and processes per context "
        "(default: SHOP_TOPOLOGY, else monolith)",
    )
    parser.add_argument("--duration", type=float, default=300, help="seconds of load and faults (default 300)")
    parser.add_argument("--seed", type=int, default=1, help="the seed of the fault schedule and the clients' choices")
    parser.add_argument("--clients", type=int, default=12, help="concurrent clients (default 12)")
    parser.add_argument("--web-workers", type=int, default=3, help="gunicorn workers (default 3)")
    parser.add_argument("--acceptance-timeout", type=float, default=6, help="SHOP_ACCEPTANCE_TIMEOUT (default 6 s)")
    parser.add_argument("--rest-timeout", type=float, default=240, help="deadline to come to rest (default 240 s)")
    parser.add_argument("--reports", type=Path, default=procs.ROOT / "reports", help="where the JSON report goes")
    parser.add_argument("--keep-database", action="store_true", help="keep the run's database for inspection")
    parser.add_argument("--show", type=Path, metavar="REPORT", help="print the table of a past run's JSON report")
    args = parser.parse_args(argv)
    if args.duration < 30 or not 1 <= args.clients <= 64:
        parser.error("--duration must be at least 30 s, --clients between 1 and 64")
    if args.topology not in TOPOLOGIES:  # (a default from SHOP_TOPOLOGY is not checked by choices)
        parser.error(f"topology {args.topology!r}: choose {' or '.join(TOPOLOGIES)}")
    return args


def log(message: str) -> None:
    print(f"chaos: {message}", file=sys.stderr, flush=True)


def interrupted(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    if args.show:
        from .table import table

        print(table(json.loads(args.show.read_text())))
        return 0
    for name in ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS"):
        if not os.environ.get(name):
            log(f"{name} is not set: run `make chaos` (or `python -m tools.devstack exec -- python -m tools.chaos`)")
            return 2
    signal.signal(signal.SIGTERM, interrupted)
    run_id = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-seed{args.seed}"
    server_url, database = os.environ["DATABASE_URL"], f"chaos_{run_id.replace('-', '_')}"
    contexts = ("orders", *PARTICIPANT_CONTEXTS) if args.topology == "services" else ("orders",)
    logdir = args.reports / f"chaos-{run_id}"
    logdir.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as created:
        databases = {
            context: created.enter_context(
                procs.run_database(server_url, _database_name(database, context), keep=args.keep_database, log=log)
            )
            for context in contexts
        }
        names = ", ".join(_database_name(database, context) for context in contexts)
        log(f"run {run_id} ({args.topology}): databases {names}, logs in {logdir}")
        return chaos(args, run_id, databases, logdir)


def _database_name(run_database: str, context: str) -> str:
    """Orders' database is the run's (the monolith's one); a participant context's is named after it."""
    return run_database if context == "orders" else f"{run_database}_{context}"


def settings_env(args: argparse.Namespace, run_id: str, databases: dict[str, str], logdir: Path) -> dict[str, str]:
    """What every process of the run shares (the checker included): the topology, the run's
    databases, queue, consumer groups and provider ledger, and timers short enough for sagas to
    finish fast. Every participant is remote in services (the settings' default there); in the
    monolith payments is."""
    remote = {} if args.topology == "services" else {"SAGA_REMOTE_PARTICIPANTS": "payments"}
    return {
        "DJANGO_SETTINGS_MODULE": "shop.settings",
        "SHOP_TOPOLOGY": args.topology,
        "SHOP_CONTEXT": "orders",  # the checker's, the orders processes'; a participant's process says its own
        **database_env(databases),
        **remote,
        "SHOP_CELERY_QUEUE": f"chaos-{run_id}",
        "KAFKA_CONSUMER_GROUP": f"chaos-{run_id}",
        "SHOP_ACCEPTANCE_TIMEOUT": str(int(args.acceptance_timeout)),
        "SAGA_STALL_AFTER": "2",
        "SAGA_SWEEP_INTERVAL": "0.5",
        "PAYMENTS_GATEWAY": "tools.chaos.gateway.LedgerGateway",
        "CHAOS_PROVIDER_LEDGER": str(logdir / "provider-ledger.jsonl"),
        "PYTHONUNBUFFERED": "1",
        "PYTHONFAULTHANDLER": "1",  # a process stuck at the end shows its stacks (tools/procs/process.py)
    }


def chaos(args: argparse.Namespace, run_id: str, databases: dict[str, str], logdir: Path) -> int:
    shared = settings_env(args, run_id, databases, logdir)
    checker = {context: procs.with_application_name(url, CHECKER) for context, url in databases.items()}
    os.environ.update({**shared, **database_env(checker)})
    try:
        with (
            participant_migrations(procs.with_venv_on_path(os.environ), logdir)
            if len(databases) > 1
            else contextlib.nullcontext()
        ):
            topics, topics_env = django_for_run(run_id)
    except procs.ProcError as error:
        log(f"error: {error}")
        return 2
    env = procs.with_venv_on_path({**os.environ, **shared, **topics_env})
    token = _token()
    stack = Stack(env=env, databases=databases, logdir=logdir, web_workers=args.web_workers)
    began = time.monotonic()
    try:
        processes = ", ".join(p.name for p in stack.processes())
        log(f"starting the stack ({args.topology}; gunicorn at {stack.url}, {args.web_workers} workers): {processes}")
        stack.start()
        log(f"stack ready in {time.monotonic() - began:.1f} s")
        return _load_faults_check(args, run_id, stack, token, topics, logdir)
    except procs.ProcError as error:
        log(f"error: {error}")
        return 2
    finally:
        stack.stop()


def _token() -> str:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    user = get_user_model().objects.create_superuser("chaos", "chaos@example.com", None)
    return str(Token.objects.create(user=user).key)


def orderable(product_id: str) -> bool:
    """Whether placing an order finds the product (in services, in orders' price list), asked as
    placement asks; on a connection of the calling client's thread, closed at once."""
    from django.db import connection

    from orders.selectors import priced_products_by_ids

    try:
        return bool(priced_products_by_ids(ids={uuid.UUID(product_id)}))
    finally:
        connection.close()


def _load_faults_check(
    args: argparse.Namespace, run_id: str, stack: Stack, token: str, topics: dict[str, str], logdir: Path
) -> int:
    from django.conf import settings

    from . import checks, report
    from .clients import Api, Client, Courier, Record, build_world
    from .faults import Injector, Timing, kinds, plan
    from .gateway import read_ledger
    from .table import table

    rng = random.Random(args.seed)
    record = Record()
    api = Api(stack.port, token, record)
    world = build_world(api, record, rng, orderable)
    courier = Courier(settings.KAFKA_BOOTSTRAP_SERVERS, topics["fulfillment_events"])
    schedule = plan(args.duration, rng, kinds(args.topology))
    timing = Timing.for_duration(args.duration)
    log(f"load for {args.duration:.0f} s from {args.clients} clients, {len(schedule)} faults planned")

    stop = threading.Event()
    t0 = time.monotonic()
    record.t0 = time.time()
    injector = Injector(stack, schedule, timing=timing, rng=rng, redis_url=settings.REDIS_URL, t0=t0)
    clients = [
        Client(
            i,
            api=api,
            world=world,
            record=record,
            courier=courier,
            seed=args.seed,
            stop=stop,
            acceptance_timeout=args.acceptance_timeout,
            orderable=orderable,
        )
        for i in range(args.clients)
    ]
    injector.start()
    for client in clients:
        client.start()
    try:
        while time.monotonic() - t0 < args.duration:
            time.sleep(min(10.0, max(args.duration - (time.monotonic() - t0), 0.1)))
            log(f"{time.monotonic() - t0:5.0f} s: {len(record.placed)} orders, {len(injector.faults)} faults")
        stop.set()
        injector.stop()
        stopped = time.monotonic()
        log("faults stopped; clients finishing; waiting for the shop to come to rest")
        for client in clients:
            client.join(timeout=120)
        courier.close()
        at_rest = checks.wait_until_at_rest(args.rest_timeout - (time.monotonic() - stopped))
        quiescence = round(time.monotonic() - stopped, 1) if at_rest else None
        log(f"at rest after {quiescence} s" if at_rest else "NOT at rest before the deadline")
    finally:
        stop.set()
        if injector.is_alive():
            injector.stop()  # idempotent: no more faults, pending ends done
        stack.stop()
        injector.release()

    sent = {
        str(i)
        for alias in checks.outbox_databases()
        for i in checks.outboxes(alias).filter(sent_at__isnull=False).values_list("id", flat=True)
    }
    reading = checks.read_topics(settings.KAFKA_BOOTSTRAP_SERVERS, topics.values(), expected=sent, idle=3, timeout=180)
    evidence = checks.Evidence(
        record=record,
        faults=injector.faults,
        reading=reading,
        ledger=read_ledger(Path(os.environ["CHAOS_PROVIDER_LEDGER"])),
        acceptance_timeout=args.acceptance_timeout,
        at_rest=at_rest,
        kinds=kinds(args.topology),
    )
    invariants = checks.check(evidence)
    run: dict[str, Any] = {
        "id": run_id,
        "seed": args.seed,
        "topology": args.topology,
        "clients": args.clients,
        "duration_s": args.duration,
        "web_workers": args.web_workers,
        "acceptance_timeout_s": args.acceptance_timeout,
        "logs": str(logdir),
    }
    summary = report.summary(
        run=run,
        record=record,
        faults=injector.faults,
        reading=reading,
        quiescence=quiescence,
        invariants=invariants,
        kinds=kinds(args.topology),
    )
    path = args.reports / f"chaos-{run_id}.json"
    path.write_text(json.dumps(summary, indent=2, default=str))
    print(table(summary), flush=True)
    log(f"report: {path}")
    return 0 if summary["passed"] else 1
