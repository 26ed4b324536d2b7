"""A process of a harness: started in a process group of its own with its log file and its environment,
dying with the launcher, waited for with a deadline, stopped with its stop signal and then killed."""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[2]  # the checkout: every process runs there
PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None) if sys.platform.startswith("linux") else None
T = TypeVar("T")


class ProcError(Exception):
    """A process did not start, or a wait for one ran out; the message says what, with its log's end."""


class Exited(ProcError):
    """The process exited while it was waited for."""


def dies_with_us(sig: int) -> Callable[[], None]:
    """A preexec_fn: the child gets `sig` when its launcher dies, even by SIGKILL (Linux). It is the
    thread that starts a child that counts as its parent: that thread must outlive the child."""
    launcher = os.getpid()

    def preexec() -> None:
        if _libc is not None:
            _libc.prctl(PR_SET_PDEATHSIG, int(sig))
        if os.getppid() != launcher:  # the launcher died before prctl took effect
            os._exit(1)

    return preexec


def free_port() -> int:
    """A port free on 127.0.0.1 now; whoever binds it first gets it."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def with_venv_on_path(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with this Python's scripts (the venv's bin: celery, gunicorn, a Procfile's `python`) first on PATH."""
    return {**env, "PATH": os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])}


def wait_until(condition: Callable[[], T], *, timeout: float, what: str, interval: float = 0.1) -> T:
    """`condition()` once it is truthy; ProcError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise ProcError(f"timed out after {timeout:.0f} s waiting for {what}")


def get_json(url: str, timeout: float = 5) -> tuple[int, dict[str, object]]:
    """GET `url`: (status, JSON body), an error's too (a 503's body may say what is wrong);
    (0, {}) while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as answer:
        try:
            return answer.code, json.load(answer)
        except ValueError:
            return answer.code, {}
    except (OSError, ValueError):
        return 0, {}


class Proc:
    """One process (with its children) in a process group of its own, so that a signal to the group
    reaches all of it (a SIGKILL takes the whole of it, as a crash would) and Ctrl-C in the launcher's
    terminal does not. Its output is appended to `logfile`; it gets `stop_signal` when it is stopped,
    and also when the launcher dies."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        logfile: Path,
        env: Mapping[str, str] | None = None,
        stop_signal: int = signal.SIGTERM,
    ):
        self.name, self.argv, self.logfile, self.stop_signal = name, argv, logfile, stop_signal
        self.env = dict(os.environ if env is None else env)
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with open(self.logfile, "ab") as log:
            log.write(f"\n=== start #{self.starts} at {time.strftime('%H:%M:%S')} ===\n".encode())
            log.flush()
            try:
                self.popen = subprocess.Popen(
                    self.argv,
                    cwd=ROOT,
                    env=self.env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=dies_with_us(self.stop_signal),
                )
            except OSError as error:
                raise ProcError(f"cannot start {self.name} ({self.argv[0]}): {error.strerror}") from None

    @property
    def pid(self) -> int:
        if self.popen is None:
            raise ProcError(f"{self.name} was never started")
        return self.popen.pid

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def exited(self) -> bool:
        """Started, and no longer running."""
        return self.popen is not None and self.popen.poll() is not None

    def send_signal(self, signum: int) -> None:
        """To the process only, not to its group (SIGSTOP and SIGCONT, say)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signum)

    def signal_group(self, signum: int) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signum)

    def kill(self) -> None:
        """SIGKILL to the whole group, as a crash of the machine would end it."""
        if self.popen is None:
            return
        self.signal_group(signal.SIGKILL)
        self.popen.wait(timeout=30)

    def stop(self, timeout: float = 20) -> bool:
        """Its stop signal to the process only, so that it ends its children its own way (a Celery
        worker's warm shutdown lets its pool finish the tasks it runs, gunicorn's master stops its
        workers, PostgreSQL's fast shutdown its backends); if it is still running after `timeout`,
        SIGABRT for its stacks (PYTHONFAULTHANDLER prints every thread's); then SIGKILL to whatever
        is left of its group. Whether it stopped in time."""
        if self.popen is None:
            return True
        if self.popen.poll() is None:
            self.send_signal(self.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=timeout)
        in_time = self.popen.poll() is not None
        if not in_time:
            with open(self.logfile, "ab") as log:
                log.write(f"\n=== did not stop in {timeout:.0f} s: SIGABRT for its stacks ===\n".encode())
            self.send_signal(signal.SIGABRT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=5)
        self.signal_group(signal.SIGKILL)
        self.popen.wait(timeout=30)
        return in_time

    def wait_for(self, condition: Callable[[], T], *, timeout: float, what: str, interval: float = 0.1) -> T:
        """`condition()` once it is truthy, while the process runs; Exited if it exits first,
        ProcError at the deadline (both with the end of its log)."""

        def alive_and_ready() -> T:
            if not self.running():
                raise Exited(f"{self.name} exited; end of {self.logfile}:\n{self.log_tail()}")
            return condition()

        try:
            return wait_until(alive_and_ready, timeout=timeout, what=what, interval=interval)
        except Exited:
            raise
        except ProcError as error:
            raise ProcError(f"{error}; end of {self.logfile}:\n{self.log_tail()}") from None

    def said(self, line: str) -> bool:
        """Whether `line` is in the end of its log (e.g. a worker's "ready.")."""
        return line in self.log_tail(200)

    def log_tail(self, lines: int = 15) -> str:
        text = self.logfile.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])
