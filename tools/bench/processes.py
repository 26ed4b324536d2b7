"""The shop's processes the benchmarks run, as in the Procfile and docker compose: Celery workers
and beat, the outbox relay, gunicorn. Each logs to the run's folder and is stopped by the bench.
No Django."""

from __future__ import annotations

import os
import sys
import urllib.request
from pathlib import Path

from tools.chaos.stack import Proc, StackError, children_of, free_port, wait_until

READY_TIMEOUT = 120.0
TASK = "saga.tasks.advance_saga["  # Celery logs "Task <name>[<id>] succeeded in ..." at INFO for each task run


class Processes:
    """Started on demand, stopped together (`stop_all`)."""

    def __init__(self, env: dict[str, str], logdir: Path):
        self.env, self.logdir = env, logdir
        self.started: list[Proc] = []

    def _start(self, name: str, argv: list[str], **env: str) -> Proc:
        proc = Proc(name, argv, {**self.env, **env}, self.logdir)
        proc.start()
        self.started.append(proc)
        return proc

    def workers(self, count: int, concurrency: int) -> list[Proc]:
        """`celery -A shop worker -c N` processes (the Procfile's worker), ready to take tasks."""
        celery = [sys.executable, "-m", "celery", "-A", "shop", "worker", "--concurrency", str(concurrency)]
        quiet = ["--loglevel", "INFO", "--without-heartbeat", "--without-gossip", "--without-mingle"]
        # Celery's line for each task done is how tasks_run counts them (off by default: CELERY_LOG_LEVEL).
        procs = [
            self._start(f"worker-{n}", [*celery, "-n", f"bench{n}@%h", *quiet], CELERY_LOG_LEVEL="INFO")
            for n in range(count)
        ]
        for proc in procs:
            _wait_for_line(proc, "ready.")
        return procs

    def beat(self) -> Proc:
        schedule = str(self.logdir / "beat-schedule")
        return self._start("beat", [sys.executable, "-m", "celery", "-A", "shop", "beat", "--schedule", schedule])

    def relay(self) -> Proc:
        return self._start("relay", [sys.executable, "manage.py", "relay_outbox"])

    def web(self, workers: int) -> tuple[Proc, str]:
        """gunicorn with `workers` processes; returns it and its URL once /api/health answers 200."""
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        argv = [sys.executable, "-m", "gunicorn", "shop.wsgi:application", "--bind", f"127.0.0.1:{port}"]
        proc = self._start("web", [*argv, "--workers", str(workers), "--log-level", "warning"])
        wait_until(lambda: _healthy(url), timeout=READY_TIMEOUT, what=f"gunicorn at {url}", interval=0.2)
        return proc, url

    def stop(self, proc: Proc) -> None:
        proc.stop()
        self.started.remove(proc)

    def stop_all(self) -> None:
        for proc in reversed(self.started):
            proc.stop()
        self.started.clear()


def _wait_for_line(proc: Proc, line: str) -> None:
    def said() -> bool:
        if not proc.running():
            raise StackError(f"{proc.name} exited; end of its log:\n{proc.log_tail()}")
        return line in proc.log_tail(200)

    wait_until(said, timeout=READY_TIMEOUT, what=f"{proc.name} to say {line!r}", interval=0.2)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/health", timeout=5) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def tasks_run(workers: list[Proc]) -> int:
    """advance_saga tasks the workers have finished so far, from their logs (they run at INFO)."""
    lines = (line for w in workers for line in (w.logdir / f"{w.name}.log").read_text(errors="replace").splitlines())
    return sum(1 for line in lines if TASK in line and "succeeded" in line)


def cpu_seconds(workers: list[Proc]) -> float:
    """CPU time (user and system) the workers and their pool processes have used so far: a figure
    of the engine's cost that other work on the machine disturbs less than its rate."""
    return sum(_cpu(pid) for w in workers for pid in [w.pid, *children_of(w.pid)])


def machine_cpu_seconds() -> float:
    """CPU time the whole machine (every core, every process: the database too) has spent busy so
    far, from /proc/stat: what a saga costs in all, beside what the workers alone spend."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, Path("/proc/stat").read_text().split()[1:9])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def rss_bytes(workers: list[Proc]) -> int:
    """Resident memory of the workers, their pool processes included (/proc/<pid>/status)."""
    return sum(_rss(pid) for w in workers for pid in [w.pid, *children_of(w.pid)])


def _rss(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0
