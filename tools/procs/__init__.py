"""The one process library of the tools (devstack, chaos, bench): a process started with its log
file and its environment in a process group of its own, dying with its launcher; waits with a
deadline; stopping (its stop signal, then SIGKILL); what /proc says of processes; PostgreSQL
connections and a database of a run's own. No Django, nothing of the project."""

from .postgres import connect, run_database, with_application_name
from .process import ROOT, Exited, Proc, ProcError, dies_with_us, free_port, get_json, wait_until, with_venv_on_path
from .proctree import (
    ancestors,
    children_of,
    cpu_seconds,
    listener_pid,
    machine_cpu_seconds,
    parent_of,
    rss_bytes,
    with_children,
)

__all__ = [
    "ROOT",
    "Exited",
    "Proc",
    "ProcError",
    "ancestors",
    "children_of",
    "connect",
    "cpu_seconds",
    "dies_with_us",
    "free_port",
    "get_json",
    "listener_pid",
    "machine_cpu_seconds",
    "parent_of",
    "rss_bytes",
    "run_database",
    "wait_until",
    "with_application_name",
    "with_children",
    "with_venv_on_path",
]
