"""An open-loop load generator (standard library only): POST /api/orders at fixed times, whatever
the answers, from a pool of threads each keeping one HTTP connection.

    python -m tools.bench.loadgen SPEC.json   # prints [[intended send time, HTTP status, order id], ...]

SPEC: {"url", "token", "rate" (orders/s), "seconds", "bodies": [order bodies, used in turn]}.
The n-th order is due at start + n / rate; a thread sends it at that time or, if every thread
was busy, as soon as one is free, and the intended time is what is reported, so a slow server
shows as latency rather than as a lower rate (no coordinated omission).
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

THREADS = 48
START_DELAY = 0.5  # seconds for the threads to connect before the first order is due


def main(spec_path: str) -> None:
    with open(spec_path) as spec_file:
        spec = json.load(spec_file)
    count = int(spec["rate"] * spec["seconds"])
    start = time.time() + START_DELAY
    due = [start + n / spec["rate"] for n in range(count)]
    results: list[list[Any]] = [[t, 0, None] for t in due]
    cursor = iter(range(count))
    lock = threading.Lock()

    def next_index() -> int | None:
        with lock:
            return next(cursor, None)

    threads = [threading.Thread(target=_sender, args=(spec, due, results, next_index)) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    json.dump(results, sys.stdout)


def _sender(spec: dict[str, Any], due: list[float], results: list[list[Any]], next_index: Any) -> None:
    target = urlsplit(spec["url"])
    headers = {"Authorization": f"Token {spec['token']}", "Content-Type": "application/json"}
    connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)
    bodies = spec["bodies"]
    while (index := next_index()) is not None:
        time.sleep(max(due[index] - time.time(), 0))
        try:
            connection.request("POST", "/api/orders", body=json.dumps(bodies[index % len(bodies)]), headers=headers)
            answer = connection.getresponse()
            body = answer.read()
            results[index][1] = answer.status
            if answer.status == 202:
                results[index][2] = json.loads(body)["id"]
        except (OSError, http.client.HTTPException):  # recorded as status 0; a new connection for the next
            connection.close()
            connection = http.client.HTTPConnection(target.hostname or "127.0.0.1", target.port, timeout=30)
    connection.close()


if __name__ == "__main__":
    main(sys.argv[1])
