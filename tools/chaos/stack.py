"""The shop as real processes for a chaos run: gunicorn, Celery workers and beat, two relays (one
active, one standby), the consumer and the payments participant, each in a process group of its
own (a SIGKILL takes the whole of it, as a crash would), logging under the run's folder.

Every process gets the same settings but its own PostgreSQL `application_name` (shop-<name>), so
the run can tell its connections apart: which relay holds the relay lock, which sessions are the
shop's to terminate (never the checker's, `chaos-checker`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg2

ROOT = Path(__file__).resolve().parents[2]
RELAY_LOCK = 0x5A6A_0B0C  # saga/messaging/relay.py's LOCK_KEY: the active relay holds it
APP_PREFIX = "shop-"
CHECKER = "chaos-checker"


class StackError(Exception):
    """The stack could not be started; the message says what and where its log is."""


def with_application_name(url: str, name: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "application_name"]
    return urlunsplit(parts._replace(query=urlencode([*query, ("application_name", name)])))


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def connect(url: str) -> psycopg2.extensions.connection:
    parts = urlsplit(url)
    params: dict[str, Any] = {
        "host": parts.hostname,
        "port": parts.port or 5432,
        "user": parts.username,
        "password": parts.password,
        "dbname": parts.path.lstrip("/"),
        "connect_timeout": 10,
        **dict(parse_qsl(parts.query)),
    }
    conn = psycopg2.connect(**params)
    conn.autocommit = True
    return conn


def create_database(server_url: str, name: str) -> None:
    """A database of the run's own on the given server, so a run never touches other data."""
    conn = connect(server_url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


def drop_database(server_url: str, name: str) -> None:
    conn = connect(server_url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()


@contextlib.contextmanager
def run_database(server_url: str, name: str, *, keep: bool, log: Callable[[str], None]) -> Iterator[str]:
    """A database of the run's own on the server, for the run's length (or kept, for inspection);
    yields its URL."""
    create_database(server_url, name)
    try:
        yield with_database(server_url, name)
    finally:
        if keep:
            log(f"kept the database {name}")
        else:
            drop_database(server_url, name)


def django_for_run(kind: str, run_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """Set Django up in this process on the run's database (DATABASE_URL), migrate it and give the
    run Kafka topics of its own (`<kind>-<run_id>.<role>`). Returns the topics by role and what the
    run's child processes need in their environment beside this process's: the topics, this
    Python's scripts (celery, gunicorn) on PATH."""
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from saga.messaging.catalog import catalog

    call_command("migrate", verbosity=0)
    topics = {role: f"{kind}-{run_id}.{role}" for role in catalog.roles()}
    settings.KAFKA_TOPICS = topics
    return topics, {
        **{f"KAFKA_TOPIC_{role.upper()}": name for role, name in topics.items()},
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def parent_of(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])  # after "(comm)": state, ppid


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and parent_of(int(entry.name)) == pid:
            found.append(int(entry.name))
    return found


def ancestors(pid: int) -> list[int]:
    chain = []
    while pid > 1:
        pid = parent_of(pid)
        chain.append(pid)
    return chain


def listener_pid(port: int) -> int | None:
    """The process listening on 127.0.0.1:`port` (Linux /proc), or None."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(f"socket:[{inode}]")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if any(os.readlink(fd) in inodes for fd in (entry / "fd").iterdir()):
                return int(entry.name)
        except OSError:
            continue
    return None


def own_service_pid(address: str) -> int | None:
    """The pid of the local server at `address` (host:port) if it was started by one of our
    ancestors (the devstack launcher of `make chaos` or `make test`): only such a server is ours to
    freeze or flush. None for a server the environment gave us."""
    host, _, port = address.rpartition(":")
    if host not in ("127.0.0.1", "localhost") or not port.isdigit():
        return None
    pid = listener_pid(int(port))
    if pid is None or parent_of(pid) not in ancestors(os.getpid()):
        return None
    return pid


class Proc:
    """One process of the stack (with its children), in a process group of its own."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], logdir: Path):
        self.name, self.argv, self.env, self.logdir = name, argv, env, logdir
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        # Dies with the run even if the run is SIGKILLed (the thread that starts it lives as long).
        guard = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []
        with open(self.logdir / f"{self.name}.log", "ab") as log:
            log.write(f"\n=== start #{self.starts} at {time.strftime('%H:%M:%S')} ===\n".encode())
            log.flush()
            self.popen = subprocess.Popen(
                [*guard, *self.argv],
                cwd=ROOT,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise StackError(f"{self.name} was never started")
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)

    def kill(self) -> None:
        if self.popen is None:
            return
        self.signal_group(signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self, timeout: float = 20) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            # To the leader only: a Celery worker's warm shutdown lets its pool finish the tasks it runs
            # (a SIGTERM to the whole group would kill them), gunicorn's master stops its workers.
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        if self.popen.poll() is None:  # stuck: where? (PYTHONFAULTHANDLER prints every thread's stack on SIGABRT)
            with open(self.logdir / f"{self.name}.log", "ab") as log:
                log.write(f"\n=== did not stop in {timeout:.0f} s: SIGABRT for its stacks ===\n".encode())
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGABRT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=5)
        self.signal_group(signal.SIGKILL)  # whatever of its group is left
        self.popen.wait(timeout=30)

    def log_tail(self, lines: int = 15) -> str:
        text = (self.logdir / f"{self.name}.log").read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])


def wait_until(condition: Callable[[], object], *, timeout: float, what: str, interval: float = 0.1) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise StackError(f"timed out after {timeout:.0f} s waiting for {what}")


def _said(process: Proc, line: str) -> Callable[[], bool]:
    return lambda: line in process.log_tail(200)


class Stack:
    """The shop's processes for one run (the services, PostgreSQL, Redis and the broker, are given)."""

    def __init__(self, *, env: dict[str, str], database_url: str, logdir: Path, web_workers: int):
        self.database_url = database_url
        self.logdir = logdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        python = sys.executable

        def proc(name: str, argv: list[str], **extra: str) -> Proc:
            url = with_application_name(database_url, f"{APP_PREFIX}{name}")
            return Proc(name, argv, {**env, "DATABASE_URL": url, **extra}, logdir)

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
            wait_until(self.healthy, timeout=ready_timeout, what=f"the web to answer at {self.url}/api/health")
            wait_until(self.active_relay, timeout=ready_timeout, what="a relay to become active")
            for process, line in [
                *((w, "ready.") for w in self.workers),
                (self.consumer, "consume_events: reading"),
                (self.participant, "run_participant: serving"),
            ]:
                wait_until(_said(process, line), timeout=ready_timeout, what=process.name)
        except StackError as error:
            dead = [p for p in self.processes() if p.popen is not None and not p.running()]
            details = "".join(f"\n--- {p.name} exited; end of its log:\n{p.log_tail()}" for p in dead)
            raise StackError(f"{error}{details}") from None

    def healthy(self) -> bool:
        import urllib.request

        try:
            with urllib.request.urlopen(f"{self.url}/api/health", timeout=5) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def active_relay(self) -> Proc | None:
        """The relay holding the relay lock, from pg_locks."""
        conn = connect(with_application_name(self.database_url, CHECKER))
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
        return children_of(self.web.pid) if self.web.running() else []

    def stop(self) -> None:
        for process in reversed(self.processes()):
            process.stop()
