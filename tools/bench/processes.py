"""The shop's processes the benchmarks run, as in the Procfile and docker compose: Celery workers
and beat, the outbox relay, gunicorn. Each logs to the run's folder and is stopped by the bench.
No Django."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit

from tools import procs
from tools.procs import Proc

READY_TIMEOUT = 120.0
TASK = "saga.tasks.advance_saga["  # Celery logs "Task <name>[<id>] succeeded in ..." at INFO for each task run


class Processes:
    """Started on demand, stopped together (`stop_all`)."""

    def __init__(self, env: dict[str, str], logdir: Path):
        self.env, self.logdir = env, logdir
        self.started: list[Proc] = []

    def _start(self, name: str, argv: list[str], **env: str) -> Proc:
        proc = Proc(name, argv, env={**self.env, **env}, logfile=self.logdir / f"{name}.log")
        proc.start()
        self.started.append(proc)
        return proc

    def workers(self, count: int, concurrency: int) -> list[Proc]:
        """`celery -A shop worker -c N` processes (the Procfile's worker), ready to take tasks."""
        celery = [sys.executable, "-m", "celery", "-A", "shop", "worker", "--concurrency", str(concurrency)]
        quiet = ["--loglevel", "INFO", "--without-heartbeat", "--without-gossip", "--without-mingle"]
        # Celery's line for each task done is how tasks_run counts them (off by default: CELERY_LOG_LEVEL).
        started = [
            self._start(f"worker-{n}", [*celery, "-n", f"bench{n}@%h", *quiet], CELERY_LOG_LEVEL="INFO")
            for n in range(count)
        ]
        for proc in started:
            proc.wait_for(partial(proc.said, "ready."), timeout=READY_TIMEOUT, what=f"{proc.name} to say 'ready.'")
        return started

    def beat(self) -> Proc:
        schedule = str(self.logdir / "beat-schedule")
        return self._start("beat", [sys.executable, "-m", "celery", "-A", "shop", "beat", "--schedule", schedule])

    def relay(self, context: str = "orders") -> Proc:
        """`relay_outbox` of `context`'s database (its SHOP_CONTEXT; in the monolith, the one database)."""
        name = "relay" if context == "orders" else f"{context}-relay"
        return self._start(name, [sys.executable, "manage.py", "relay_outbox"], SHOP_CONTEXT=context)

    def event_consumer(self) -> Proc:
        """`consume_events`: the participants' replies to the sagas (the services topology's)."""
        return self._start("consume-events", [sys.executable, "manage.py", "consume_events"])

    def participant(self, context: str) -> Proc:
        """`run_participant <context>`, connected to that context's database only (SHOP_CONTEXT)."""
        argv = [sys.executable, "manage.py", "run_participant", context]
        return self._start(f"{context}-participant", argv, SHOP_CONTEXT=context)

    def web(self, workers: int) -> tuple[Proc, str]:
        """gunicorn with `workers` processes; returns it and its URL once /api/health answers 200."""
        port = procs.free_port()
        url = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "gunicorn", "shop.wsgi:application", "--bind", f"127.0.0.1:{port}"]
        proc = self._start("web", [*argv, "--workers", str(workers), "--log-level", "warning"])

        def healthy() -> bool:
            return procs.get_json(f"{url}/api/health")[0] == 200

        proc.wait_for(healthy, timeout=READY_TIMEOUT, what=f"gunicorn at {url}", interval=0.2)
        return proc, url

    def stop(self, proc: Proc) -> None:
        proc.stop()
        self.started.remove(proc)

    def stop_all(self) -> None:
        """Every process at once: each waits for its own stop (up to 20 s), so one by one the
        services topology's ten would take half a minute."""
        if self.started:
            with ThreadPoolExecutor(max_workers=len(self.started)) as stopping:
                list(stopping.map(Proc.stop, self.started))
        self.started.clear()


def tasks_run(workers: list[Proc]) -> int:
    """advance_saga tasks the workers have finished so far, from their logs (they run at INFO)."""
    lines = (line for w in workers for line in w.logfile.read_text(errors="replace").splitlines())
    return sum(1 for line in lines if TASK in line and "succeeded" in line)


def cpu_seconds(workers: list[Proc]) -> float:
    """CPU time (user and system) the workers and their pool processes have used so far: a figure
    of the engine's cost that other work on the machine disturbs less than its rate."""
    return sum(procs.cpu_seconds(pid) for w in workers for pid in procs.with_children(w.pid))


def server_pids() -> dict[str, list[int]]:
    """The processes of the database server (the postmaster and its backends) and of the Kafka
    broker the run uses, where they listen on this machine (the devstack's); [] elsewhere."""
    addresses = {
        "postgres": urlsplit(os.environ["DATABASE_URL"]).port or 5432,
        "broker": int(os.environ["KAFKA_BOOTSTRAP_SERVERS"].split(",")[0].rsplit(":", 1)[1]),
    }
    listeners = {name: procs.listener_pid(port) for name, port in addresses.items()}
    return {name: procs.with_children(pid) if pid else [] for name, pid in listeners.items()}


class CpuMeter:
    """CPU time of groups of processes from now on: `groups()` is read at the start and at the end
    (a database server's backends come and go); a process gone by the end is not counted."""

    def __init__(self, groups: Callable[[], dict[str, list[int]]]):
        self.groups = groups
        self.before = {name: {pid: procs.cpu_seconds(pid) for pid in pids} for name, pids in groups().items()}

    def ms_per(self, count: int) -> dict[str, float]:
        """Each group's milliseconds of CPU since the start, per one of `count` (sagas)."""
        spent = {}
        for name, pids in self.groups().items():
            before = self.before.get(name, {})
            seconds = sum(procs.cpu_seconds(pid) - before.get(pid, 0.0) for pid in pids)
            spent[name] = seconds * 1000 / count
        return spent


def rss_bytes(workers: list[Proc]) -> int:
    """Resident memory of the workers, their pool processes included (/proc/<pid>/status)."""
    return sum(procs.rss_bytes(pid) for w in workers for pid in procs.with_children(w.pid))
