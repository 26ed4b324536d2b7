"""The short chaos run, part of `make test`, in each topology: the whole stack as real processes for
a minute of load with every kind of fault once (tools/chaos/run.py), then every invariant of the
contract checked. On this 2-core machine the monolith's takes about 110 s, the services' (four
databases, fourteen processes, twenty fault kinds) about 140 s. Both run in the suite's monolith
run (unmarked): each makes a stack of its own topology, whichever the suite's is.

It runs `python -m tools.chaos` as a child of the test, against the services `make test` started: the run
makes a database, a Celery queue, Kafka topics and consumer groups of its own, so nothing of the
rest of the suite is touched (it freezes the broker and flushes Redis only while nothing else
runs). Everything it waits for has a deadline; the report (reports/chaos-*.json) says what failed.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tools.chaos.faults import kinds

ROOT = Path(__file__).resolve().parents[2]
ARGS = ["--duration", "60", "--seed", "11", "--clients", "8", "--rest-timeout", "180"]
# Orders the minute of load places at least: the services topology, every participant's step a
# round trip through Kafka and fourteen processes on this 2-core machine, sustains about half the
# monolith's rate (71 orders against 125 with seed 11).
MIN_ORDERS = {"monolith": 100, "services": 50}


# The test runs a stack of its own in each topology (the suite's run of the monolith runs both).
@pytest.mark.timeout(600)
@pytest.mark.parametrize("topology", ["monolith", "services"])
def test_a_short_chaos_run_keeps_every_invariant(topology):
    run = subprocess.run(
        [sys.executable, "-m", "tools.chaos", "--topology", topology, *ARGS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
    )
    found = re.search(r"^chaos: report: (\S+)$", run.stderr, re.MULTILINE)
    assert found, f"no report (exit {run.returncode}):\n{run.stdout}\n{run.stderr[-5000:]}"
    report = json.loads(Path(found.group(1)).read_text())
    table = run.stdout

    assert report["orders"]["placed"] >= MIN_ORDERS[topology], table
    assert all(report["faults"]["by_kind"][kind]["count"] >= 1 for kind in kinds(topology)), table
    assert [i["name"] for i in report["invariants"] if not i["passed"]] == [], table
    assert run.returncode == 0, table
