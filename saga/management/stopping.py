"""Long-running commands stop cleanly on SIGTERM (process managers, docker stop) or Ctrl-C."""

import signal
import threading


def stop_on_signals() -> threading.Event:
    """An event set by SIGTERM or SIGINT: the command finishes what it is doing and returns."""
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    return stop
