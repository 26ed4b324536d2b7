"""Start what the shop needs for development and tests, unless the environment provides it.

    python -m tools.devstack run              # services, migrate, seed_demo, then the Procfile until Ctrl-C
    python -m tools.devstack exec -- CMD ...  # services, then CMD; exits with CMD's code (`make test`)

For each of DATABASE_URL, REDIS_URL and KAFKA_BOOTSTRAP_SERVERS that is unset, an embedded server is
started on a free 127.0.0.1 port and the variable is exported to the children: PostgreSQL, Redis,
and Tansu, a Kafka-compatible broker (tools/devstack/services.py). A variable that is set is
used as it is, and nothing is started for it.

SHOP_TOPOLOGY=services (docs/topology.md): the embedded PostgreSQL gets a database per context (shop for
orders, shop_customers, shop_inventory, shop_payments) and ORDERS_DATABASE_URL, CUSTOMERS_DATABASE_URL,
... are exported; `run` migrates each with its context's SHOP_CONTEXT and starts, besides the
Procfile's processes, each participant context's run_participant and relay_outbox. `exec` always
creates and exports them, so that one `make test` runs the tests of both topologies.

Both also export PROMETHEUS_MULTIPROC_DIR (unless set), a folder emptied at start in which every
process of the shop keeps its counters, so that one scrape of /metrics shows them all.

`run` keeps PostgreSQL's data in .devstack/postgres and, while it runs, writes the variables to
.devstack/env (`set -a; . .devstack/env` in another shell, then manage.py). It says "ready" once
GET /api/health answers 200: every part of the shop answers, a Celery worker included. `exec` uses a
throwaway cluster tuned for speed under .devstack/tmp/, so tests never touch the demo data and can
run beside `make run`.

Only servers started here are stopped here. Each runs in its own process group, so Ctrl-C reaches the
launcher and the app but not them, and they are stopped after the app; each also dies with the
launcher if that is killed (PR_SET_PDEATHSIG). No Django settings here: they need the services.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tools import procs

from .services import DevstackError, Service, kafka, log, postgres, redis

DEVSTACK = procs.ROOT / ".devstack"
ENVFILE = DEVSTACK / "env"
PROCFILE = procs.ROOT / "Procfile"
TOPOLOGIES = ("monolith", "services")
PARTICIPANT_CONTEXTS = ("customers", "inventory", "payments")
# Each context's database in the embedded cluster: orders' is the monolith's one.
CONTEXT_DATABASES = {"orders": "shop", **{context: f"shop_{context}" for context in PARTICIPANT_CONTEXTS}}
SHOP_READY_TIMEOUT = 120.0  # seconds `run` waits for the shop's health before saying what fails


class Interrupted(BaseException):
    """A stop signal while no child runs in the foreground. A BaseException, like
    KeyboardInterrupt, so that the readiness probes' `except Exception` cannot swallow it."""


@dataclass
class Stack:
    """The services the environment lacks: started by us, stopped by us in reverse order."""

    workdir: Path
    throwaway: bool
    databases_per_context: bool  # a database per context (CONTEXT_DATABASES), not one
    started: list[Service] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # DATABASE_URL etc.: given, or ours

    def start(self) -> None:
        databases = tuple(CONTEXT_DATABASES.values()) if self.databases_per_context else ("shop",)
        builders: dict[str, Callable[[], Service]] = {
            "DATABASE_URL": lambda: postgres(self.workdir / "postgres", self.throwaway, databases),
            "REDIS_URL": lambda: redis(self.workdir),
            "KAFKA_BOOTSTRAP_SERVERS": lambda: kafka(self.workdir),
        }
        for var, build in builders.items():
            if os.environ.get(var):
                log(f"{var} is set: using it, starting nothing for it")
                self.env[var] = os.environ[var]
                continue
            began = time.monotonic()
            self.started.append(service := build())
            self.env[var] = service.start()
            log(
                f"{service.name} ready at {self.env[var]} in {time.monotonic() - began:.1f} s "
                f"(log: {service.logfile.relative_to(procs.ROOT)})"
            )
            if var == "DATABASE_URL" and self.databases_per_context:
                self.env.update(context_database_urls(self.env[var]))
        self.env["PROMETHEUS_MULTIPROC_DIR"] = counters_dir(self.workdir)

    def stop(self) -> None:
        for service in reversed(self.started):
            service.stop()
        if self.started:
            log(f"stopped {', '.join(s.name for s in reversed(self.started))}")
        if self.throwaway:
            shutil.rmtree(self.workdir, ignore_errors=True)


def context_database_urls(cluster_url: str) -> dict[str, str]:
    """ORDERS_DATABASE_URL etc.: each context's database in the cluster of `cluster_url`."""
    server = cluster_url.rsplit("/", 1)[0]
    return {f"{context.upper()}_DATABASE_URL": f"{server}/{name}" for context, name in CONTEXT_DATABASES.items()}


def counters_dir(workdir: Path) -> str:
    """The folder of prometheus-client's multiprocess mode (saga/core/counters.py), emptied:
    the files of an earlier run's processes would be added to this run's counts."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return os.environ["PROMETHEUS_MULTIPROC_DIR"]
    folder = workdir / "metrics"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return str(folder)


# The child in the foreground (manage.py, honcho, the `exec` command), for the signal handler.
_foreground: subprocess.Popen | None = None
_signalled = False


def signalled() -> bool:
    """Whether SIGINT or SIGTERM came. A call, not the global itself: the handler may set it at any moment,
    which a type checker's narrowing of a global does not know."""
    return _signalled


def on_signal(signum: int, frame: object) -> None:
    global _signalled
    _signalled = True
    if _foreground is None or _foreground.poll() is not None:
        raise Interrupted(signum)
    # Ctrl-C (or `timeout`) signals the whole foreground process group, the child included, while
    # SIGTERM and SIGHUP were meant for us alone: pass those on. Either way, wait for the child.
    if signum != signal.SIGINT:
        _foreground.send_signal(signal.SIGTERM)


def run_foreground(argv: list[str], env: dict[str, str], capture: bool = False) -> tuple[int, str]:
    """Run a child in our process group (so it gets Ctrl-C and the terminal): (exit code, stdout)."""
    global _foreground
    try:
        _foreground = subprocess.Popen(
            argv,
            cwd=procs.ROOT,
            env=env,
            text=True,
            stdout=subprocess.PIPE if capture else None,
            preexec_fn=procs.dies_with_us(signal.SIGTERM),
        )
    except OSError as exc:
        raise DevstackError(f"cannot run {argv[0]}: {exc.strerror}") from None
    try:
        out, _ = _foreground.communicate()
    finally:
        code, _foreground = _foreground.returncode, None
    return (128 - code if code < 0 else code), out or ""


def child_env(exports: dict[str, str]) -> dict[str, str]:
    # The venv's bin first, so that the Procfile's `python` and `celery` are the venv's.
    return procs.with_venv_on_path({**os.environ, **exports})


def banner(port: int, token: str) -> str:
    site, api = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/api"
    first = 'python3 -c \'import json,sys; print(json.load(sys.stdin)["results"][0]["{}"])\''
    return f"""
==============================================================================
 The shop is starting. Ctrl-C stops everything.
   web        {site}/
   admin      {site}/admin/      user demo, password demo
   API        {api}/
   Swagger    {api}/docs/
   health     {api}/health
   API token  {token}
   metrics    curl -H "Authorization: Token {token}" {site}/metrics
 manage.py in another shell:  set -a; . .devstack/env; set +a; .venv/bin/python manage.py ...

 Try it:
   TOKEN={token} API={api}
   curl -H "Authorization: Token $TOKEN" $API/customers
   curl -H "Authorization: Token $TOKEN" $API/products
   CUSTOMER=$(curl -s -H "Authorization: Token $TOKEN" $API/customers | {first.format("id")})
   SKU=$(curl -s -H "Authorization: Token $TOKEN" $API/products | {first.format("sku")})
   curl -i -X POST -H "Authorization: Token $TOKEN" -H 'Content-Type: application/json' \\
     -d "{{\\"customer_id\\":\\"$CUSTOMER\\",\\"items\\":[{{\\"sku\\":\\"$SKU\\",\\"quantity\\":1}}]}}" $API/orders
==============================================================================
"""


def services_procfile(workdir: Path) -> Path:
    """The Procfile of the services topology, written for this run: the Procfile's processes (orders:
    web, worker, beat, relay, consumer) and, for each participant context, its consumer of commands
    and its relay, in a process whose SHOP_CONTEXT is the context's (so connected to its database only)."""
    lines = [PROCFILE.read_text().rstrip("\n"), "# Written by `make run` with SHOP_TOPOLOGY=services (tools/devstack)."]
    for context in PARTICIPANT_CONTEXTS:
        lines += [
            f"{context}: SHOP_CONTEXT={context} python manage.py run_participant {context}",
            f"{context}_relay: SHOP_CONTEXT={context} python manage.py relay_outbox",
        ]
    procfile = workdir / "Procfile.services"
    procfile.write_text("\n".join(lines) + "\n")
    return procfile


def run(stack: Stack, port: int, services: bool) -> int:
    # In services, the processes the Procfile names are orders' (a participant context's say so).
    exports = {**stack.env, "PORT": str(port), **({"SHOP_CONTEXT": "orders"} if services else {})}
    fd = os.open(ENVFILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # may hold a password
    with os.fdopen(fd, "w") as f:
        f.write("# Written by `make run`, valid while it runs. Use: set -a; . .devstack/env; set +a\n")
        f.writelines(f"{key}={shlex.quote(value)}\n" for key, value in exports.items())
    try:
        env = child_env(exports)
        if services:
            return migrate_seed_serve(env, port, services_procfile(stack.workdir), tuple(CONTEXT_DATABASES))
        return migrate_seed_serve(env, port, PROCFILE, ("orders",))
    finally:
        ENVFILE.unlink(missing_ok=True)


def migrate_seed_serve(env: dict[str, str], port: int, procfile: Path, contexts: Iterable[str]) -> int:
    """Migrate the database of each of `contexts` (in a process of that context), seed, serve `procfile`."""
    manage = [sys.executable, "manage.py"]
    code = 0
    for context in contexts:
        if code == 0 and not signalled():
            log(f"migrate with SHOP_CONTEXT={context}")
            code, _ = run_foreground([*manage, "migrate", "--noinput"], {**env, "SHOP_CONTEXT": context})
    if code == 0 and not signalled():
        code, out = run_foreground([*manage, "seed_demo"], env, capture=True)
        print(out, end="", flush=True)
    if code or signalled():
        return 0 if signalled() else code
    tokens = re.findall(r"^Demo API token:\s*(\S+)\s*$", out, re.MULTILINE)
    print(banner(port, tokens[-1] if tokens else "(not in seed_demo's output)"), flush=True)
    honcho_done = threading.Event()
    threading.Thread(target=announce_readiness, args=(f"http://127.0.0.1:{port}", honcho_done), daemon=True).start()
    # `-e /dev/null`: no .env file may point the app elsewhere than the services started above.
    try:
        code, _ = run_foreground(
            [sys.executable, "-m", "honcho", "start", "-f", str(procfile), "-e", os.devnull],
            {**env, "PYTHONUNBUFFERED": "1"},
        )
    finally:
        honcho_done.set()
    return 0 if signalled() else code


def wait_until_healthy(site: str, timeout: float, stop: threading.Event) -> tuple[bool, dict[str, object]]:
    """Poll the shop's health until it answers 200, the time is up or `stop` is set:
    (healthy, its last body)."""
    deadline = time.monotonic() + timeout
    while True:
        status, body = procs.get_json(f"{site}/api/health")
        if status == 200:
            return True, body
        if stop.wait(0.5) or time.monotonic() > deadline:
            return False, body


def announce_readiness(site: str, stop: threading.Event, timeout: float = SHOP_READY_TIMEOUT) -> None:
    """Say "ready" once every part the shop's health checks answers (web, database, broker, Kafka, a
    Celery worker), or after `timeout` what still fails."""
    healthy, body = wait_until_healthy(site, timeout, stop)
    if stop.is_set():
        return
    if healthy:
        parts = ", ".join(name for name, state in body.items() if state == "ok" and name != "status")
        log(f"ready: {site}/ ({parts}: ok)")
    else:
        failing = "; ".join(f"{name}: {state}" for name, state in body.items() if str(state).startswith("error"))
        log(f"not ready after {timeout:.0f} s: {failing or f'no answer from {site}/api/health'}")


def check_port_free(port: int) -> None:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # then bind fails only on a listener
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            raise DevstackError(f"port {port} is in use: stop what listens there, or set PORT") from None


def sweep_killed_exec_dirs() -> None:
    """Throwaway folders of killed `exec` launchers (their servers died with them) are garbage."""
    for folder in (DEVSTACK / "tmp").glob("*"):
        try:
            os.kill(int(folder.name), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except (ValueError, PermissionError):
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.devstack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    modes = parser.add_subparsers(dest="mode", required=True)
    modes.add_parser("run", help="start services, migrate, seed demo data, run the Procfile until Ctrl-C")
    modes.add_parser("exec", help="start throwaway services, run CMD, stop them").add_argument(
        "command", nargs=argparse.REMAINDER, help="-- CMD ARGS..."
    )
    args = parser.parse_args(argv)
    throwaway = args.mode == "exec"
    command = args.command[1:] if throwaway and args.command[:1] == ["--"] else getattr(args, "command", [])
    if throwaway and not command:
        parser.error("exec needs a command: exec -- CMD ARGS...")
    port = int(os.environ.get("PORT") or 8000)

    # Checked here too: `run` must not start a stack the shop then refuses.
    topology = os.environ.get("SHOP_TOPOLOGY", "monolith").strip().lower()
    if topology not in TOPOLOGIES:
        parser.error(f"SHOP_TOPOLOGY={topology!r} is unknown: use one of {', '.join(TOPOLOGIES)}")

    workdir = DEVSTACK / "tmp" / str(os.getpid()) if throwaway else DEVSTACK
    stack = Stack(workdir, throwaway, databases_per_context=throwaway or topology == "services")
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    try:
        if throwaway:
            sweep_killed_exec_dirs()
        else:
            check_port_free(port)
        stack.workdir.mkdir(parents=True, exist_ok=True)
        stack.start()
        if throwaway:
            return run_foreground(command, child_env(stack.env))[0]
        return run(stack, port, services=topology == "services")
    except Interrupted as exc:
        return 128 + exc.args[0] if throwaway else 0
    except (DevstackError, procs.ProcError) as exc:
        log(f"error: {exc}")
        return 1
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        stack.stop()
