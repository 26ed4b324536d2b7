"""The shop as real processes for a chaos run: gunicorn, Celery workers and beat, two relays (one
active, one standby), the consumer and the payments participant, each in a process group of its
own (a SIGKILL takes the whole of it, as a crash would), logging under the run's folder.

Every process gets the same settings but its own PostgreSQL `application_name` (shop-<name>), so
the run can tell its connections apart: which relay holds the relay lock, which sessions are the
shop's to terminate (never the checker's, `chaos-checker`).
"""

from __future__ import annotations

import os
import sys
from functools import partial
from pathlib import Path

from tools import procs
from tools.procs import Proc

RELAY_LOCK = 0x5A6A_0B0C  # saga/messaging/relay.py's LOCK_KEY: the active relay holds it
APP_PREFIX = "shop-"
CHECKER = "chaos-checker"


def django_for_run(run_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """Set Django up in this process on the run's database (DATABASE_URL), migrate it and give the
    run Kafka topics of its own (`chaos-<run_id>.<role>`). Returns the topics by role and what the
    run's child processes need in their environment beside this process's: the topics."""
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from saga.messaging.catalog import catalog

    call_command("migrate", verbosity=0)
    settings.KAFKA_TOPICS = topics = {role: f"chaos-{run_id}.{role}" for role in catalog.roles()}
    return topics, {f"KAFKA_TOPIC_{role.upper()}": name for role, name in topics.items()}


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
    """The shop's processes for one run (the services, PostgreSQL, Redis and the broker, are given)."""

    def __init__(self, *, env: dict[str, str], database_url: str, logdir: Path, web_workers: int):
        self.database_url = database_url
        self.logdir = logdir
        self.port = procs.free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        python = sys.executable

        def proc(name: str, argv: list[str], **extra: str) -> Proc:
            url = procs.with_application_name(database_url, f"{APP_PREFIX}{name}")
            return Proc(name, argv, env={**env, "DATABASE_URL": url, **extra}, logfile=logdir / f"{name}.log")

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
        self.relays = [proc("relay-a", [*manage, "relay_outbox"]), proc("relay-b", [*manage, "relay_outbox"])]
        self.consumer = proc("consumer", [*manage, "consume_events"])
        self.participant = proc("participant", [*manage, "run_participant", "payments"])

    def processes(self) -> list[Proc]:
        return [self.web, *self.workers, self.beat, *self.relays, self.consumer, self.participant, *self.faulty]

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
            procs.wait_until(self.active_relay, timeout=ready_timeout, what="a relay to become active")
            for process, line in [
                *((w, "ready.") for w in self.workers),
                (self.consumer, "consume_events: reading"),
                (self.participant, "run_participant: serving"),
            ]:
                procs.wait_until(partial(process.said, line), timeout=ready_timeout, what=process.name)
        except procs.ProcError as error:
            dead = [p for p in self.processes() if p.exited()]
            details = "".join(f"\n--- {p.name} exited; end of its log:\n{p.log_tail()}" for p in dead)
            raise procs.ProcError(f"{error}{details}") from None

    def healthy(self) -> bool:
        return procs.get_json(f"{self.url}/api/health")[0] == 200

    def active_relay(self) -> Proc | None:
        """The relay holding the relay lock, from pg_locks."""
        conn = procs.connect(procs.with_application_name(self.database_url, CHECKER))
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
        return next((r for r in self.relays if f"{APP_PREFIX}{r.name}" in holders), None)

    def web_workers(self) -> list[int]:
        return procs.children_of(self.web.pid) if self.web.running() else []

    def stop(self) -> None:
        for process in reversed(self.processes()):
            process.stop()
