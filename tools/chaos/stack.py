"""The shop as real processes for a chaos run, each in a process group of its own (a SIGKILL takes
the whole of it, as a crash would), logging under the run's folder.

The monolith: gunicorn, two Celery workers and beat, two relays (one active, one standby), the
consumer and the payments participant, all on one database. The services topology
(docs/topology.md): the same processes of orders (SHOP_CONTEXT=orders, web the gateway) on orders'
database, and for each participant context, in processes of that context on its own database, its
consumer of commands (two of inventory's, sharing its partitions) and its relay.

Every process gets the same settings but its own PostgreSQL `application_name` (shop-<name>), on
every database it reaches, so the run can tell its connections apart: which relay holds a
database's relay lock, which sessions are the shop's to terminate (never the checker's,
`chaos-checker`).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from tools import procs
from tools.procs import Proc

RELAY_LOCK = 0x5A6A_0B0C  # saga/messaging/relay.py's LOCK_KEY: the active relay holds it
APP_PREFIX = "shop-"
CHECKER = "chaos-checker"
TOPOLOGIES = ("monolith", "services")
PARTICIPANT_CONTEXTS = ("customers", "inventory", "payments")  # shop/settings.py's, in services
# Consumers of each participant context's commands in the services topology: more than one share
# the context's partitions (a kill leaves the other to take them all).
CONSUMERS = {"customers": 1, "inventory": 2, "payments": 1}
MIGRATE_TIMEOUT = 300.0


def database_env(urls: Mapping[str, str]) -> dict[str, str]:
    """The settings' variables of the run's databases, given by context: DATABASE_URL is orders'
    (the monolith's one), and in services each context's <CONTEXT>_DATABASE_URL."""
    env = {"DATABASE_URL": urls["orders"]}
    if len(urls) > 1:
        env.update({f"{context.upper()}_DATABASE_URL": url for context, url in urls.items()})
    return env


@contextlib.contextmanager
def participant_migrations(env: dict[str, str], logdir: Path) -> Iterator[None]:
    """Migrate each participant context's database in a process of that context (as a deployment of
    the service would), the three at once and while the block runs (orders' migration); at the
    block's end, wait for them: ProcError naming those that failed."""
    running: dict[str, subprocess.Popen[bytes]] = {}
    with contextlib.ExitStack() as logs:
        for context in PARTICIPANT_CONTEXTS:
            log = logs.enter_context(open(logdir / f"migrate-{context}.log", "wb"))
            argv = [sys.executable, "manage.py", "migrate", "--noinput"]
            env_of_context = {**env, "SHOP_CONTEXT": context}
            running[context] = subprocess.Popen(argv, cwd=procs.ROOT, env=env_of_context, stdout=log, stderr=log)
        try:
            yield
        finally:
            codes = {context: _waited(process) for context, process in running.items()}
    failed = [
        f"{context} (exit {code}, log {logdir / f'migrate-{context}.log'})" for context, code in codes.items() if code
    ]
    if failed:
        raise procs.ProcError(f"migrating a participant's database failed: {', '.join(failed)}")


def _waited(process: subprocess.Popen[bytes]) -> int:
    try:
        return process.wait(timeout=MIGRATE_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait()


def django_for_run(run_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """Set Django up in this process on the run's database (DATABASE_URL; in services orders', with
    the others as aliases), migrate it and give the run Kafka topics of its own
    (`chaos-<run_id>.<role>`). Returns the topics by role and what the run's child processes need
    in their environment beside this process's: the topics."""
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from saga.messaging.catalog import catalog

    call_command("migrate", verbosity=0)
    _check_step_faults(settings)
    settings.KAFKA_TOPICS = topics = {role: f"chaos-{run_id}.{role}" for role in catalog.roles()}
    return topics, {f"KAFKA_TOPIC_{role.upper()}": name for role, name in topics.items()}


def _check_step_faults(settings: Any) -> None:
    """The engine's checks refuse a fault for a step no definition has (saga.E001); the faulty
    workers run none, so ask here, before a run that would pass without its faults."""
    from django.core.management import call_command

    from .faults import STEP_FAULTS

    for spec in STEP_FAULTS.values():
        settings.SAGA_FAULTS = json.dumps(spec)
        call_command("check", stdout=io.StringIO())  # raises SystemCheckError, naming the step
    settings.SAGA_FAULTS = ""


def own_service_pid(address: str) -> int | None:
    """The pid of the local server at `address` (host:port) if it was started by one of our
    ancestors (the devstack launcher of `make chaos` or `make test`): only such a server is ours to
    freeze or flush. None for a server the environment gave us."""
    host, _, port = address.rpartition(":")
    if host not in ("127.0.0.1", "localhost") or not port.isdigit():
        return None
    pid = procs.listener_pid(int(port))
    if pid is None or procs.parent_of(pid) not in procs.ancestors(os.getpid()):
        return None
    return pid


class Stack:
    """The shop's processes for one run (the services, PostgreSQL, Redis and the broker, are given),
    on the run's databases by context (`databases`: orders' alone in the monolith)."""

    def __init__(self, *, env: dict[str, str], databases: dict[str, str], logdir: Path, web_workers: int):
        self.databases = databases
        self.services = len(databases) > 1
        self.logdir = logdir
        self.port = procs.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        python = sys.executable

        def proc(name: str, argv: list[str], context: str = "orders", **extra: str) -> Proc:
            named = {of: procs.with_application_name(url, f"{APP_PREFIX}{name}") for of, url in databases.items()}
            in_context = {"SHOP_CONTEXT": context} if self.services else {}
            return Proc(
                name, argv, env={**env, **database_env(named), **in_context, **extra}, logfile=logdir / f"{name}.log"
            )

        def worker(name: str, concurrency: int, **extra: str) -> Proc:
            argv = [python, "-m", "celery", "-A", "shop", "worker", "-n", f"{name}@%h", "--concurrency"]
            quiet = ["--without-heartbeat", "--without-gossip", "--without-mingle", "--loglevel", "INFO"]
            return proc(name, [*argv, str(concurrency), *quiet], **extra)

        manage = [python, "manage.py"]
        gunicorn = [python, "-m", "gunicorn", "shop.wsgi:application", "--bind", f"127.0.0.1:{self.port}"]
        options = [
            "--workers",
            str(web_workers),
            "--timeout",
            "60",
            "--graceful-timeout",
            "5",
            "--log-level",
            "warning",
        ]
        self.web = proc("web", [*gunicorn, *options])
        self.workers = [worker("worker-a", 2), worker("worker-b", 2)]
        # Started while step faults are on: workers whose steps fail, or hang past their timeout.
        self.faulty: list[Proc] = []
        self._worker = worker
        self.beat = proc(
            "beat", [python, "-m", "celery", "-A", "shop", "beat", "--schedule", str(logdir / "beat-schedule")]
        )
        self.consumer = proc("consumer", [*manage, "consume_events"])
        # The relays by context: orders' (the monolith's) active and standby; a participant's one.
        self.relays = {
            "orders": [proc("relay-a", [*manage, "relay_outbox"]), proc("relay-b", [*manage, "relay_outbox"])]
        }
        # The consumers of each remote participant context's commands: the monolith's payments only.
        if self.services:
            self.participants = {
                context: [
                    proc(f"{context}-{letter}", [*manage, "run_participant", context], context)
                    for letter in "abcd"[: CONSUMERS[context]]
                ]
                for context in PARTICIPANT_CONTEXTS
            }
            self.relays.update(
                {
                    context: [proc(f"{context}-relay", [*manage, "relay_outbox"], context)]
                    for context in PARTICIPANT_CONTEXTS
                }
            )
        else:
            self.participants = {"payments": [proc("participant", [*manage, "run_participant", "payments"])]}

    def processes(self) -> list[Proc]:
        relays = [relay for of_context in self.relays.values() for relay in of_context]
        return [self.web, *self.workers, self.beat, *relays, self.consumer, *self.consumers(), *self.faulty]

    def consumers(self) -> list[Proc]:
        """Every participant context's consumers of commands."""
        return [consumer for of_context in self.participants.values() for consumer in of_context]

    def start_faulty_worker(self, what: str, faults: str) -> Proc:
        process = self._worker(f"worker-{what}-{len(self.faulty) // 2 + 1}", 2, SAGA_FAULTS=faults)
        self.faulty.append(process)
        process.start()
        return process

    def start(self, ready_timeout: float = 120) -> None:
        for process in self.processes():
            process.start()
        try:
            procs.wait_until(self.healthy, timeout=ready_timeout, what=f"the web to answer at {self.url}/api/health")
            for context in self.relays:
                procs.wait_until(
                    partial(self.active_relay, context),
                    timeout=ready_timeout,
                    what=f"a relay of {context} to become active",
                )
            for process, line in [
                *((w, "ready.") for w in self.workers),
                (self.consumer, "consume_events: reading"),
                *((p, "run_participant: serving") for p in self.consumers()),
            ]:
                procs.wait_until(partial(process.said, line), timeout=ready_timeout, what=process.name)
        except procs.ProcError as error:
            dead = [p for p in self.processes() if p.exited()]
            details = "".join(f"\n--- {p.name} exited; end of its log:\n{p.log_tail()}" for p in dead)
            raise procs.ProcError(f"{error}{details}") from None

    def healthy(self) -> bool:
        return procs.get_json(f"{self.url}/api/health")[0] == 200

    def active_relay(self, context: str = "orders") -> Proc | None:
        """The relay of `context` holding the relay lock of its database, from pg_locks."""
        conn = procs.connect(procs.with_application_name(self.databases[context], CHECKER))
        try:
            with conn.cursor() as cursor:
                cursor.execute(
                    "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = %s "
                    "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                    [RELAY_LOCK],
                )
                holders = {row[0] for row in cursor.fetchall()}
        finally:
            conn.close()
        return next((r for r in self.relays[context] if f"{APP_PREFIX}{r.name}" in holders), None)

    def web_workers(self) -> list[int]:
        return procs.children_of(self.web.pid) if self.web.running() else []

    def stop(self) -> None:
        for process in reversed(self.processes()):
            process.stop()
