"""`make bench` at a tiny size, part of `make test`, so that no benchmark rots: every figure of the
report is there and sane (a number, not negative). Timings are never asserted: they are the
benchmark's business, and this machine's load is not the test's.

It runs `python -m tools.bench` as a child against the services `make test` started; the run makes a
database, a Celery queue and Kafka topics of its own and drops the database at the end.
"""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    *("--sagas", "10", "--ceiling-processes", "2"),
    *("--rates", "5", "--rate-seconds", "2"),
    *("--relay-messages", "200", "--grown", "1000", "--rss-sagas", "20"),
    *("--services-sagas", "0"),  # the services topology's phase takes two more minutes, even this small
]
FIGURES = (
    "ceiling_sagas_per_s",
    "engine_sagas_per_s",
    "engine_ratio",
    "engine_refusals_sagas_per_s",
    "commits_per_saga",
    "statements_per_saga",
    "savepoints_per_saga",
    "tasks_per_saga",
    "ceiling_machine_cpu_ms_per_saga",
    "worker_cpu_ms_per_saga",
    "machine_cpu_ms_per_saga",
    "web_cpu_ms_per_order",
    "extra_doorbells_pct",
    "e2e_sustained_per_s",
    "e2e_p50_ms",
    "e2e_p99_ms",
    "relay_msgs_per_s",
    "relay_lag_p50_ms",
    "relay_lag_p99_ms",
    "engine_grown_sagas_per_s",
    "grown_ratio",
    "rss_before_mb",
    "rss_after_mb",
    "burst_extra_doorbells_pct",
)


@pytest.mark.timeout(240)
def test_every_benchmark_runs_and_reports_every_figure(tmp_path):
    run = subprocess.run(
        [sys.executable, "-m", "tools.bench", *TINY, "--reports", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=220,
        check=False,
    )
    assert run.returncode == 0, f"exit {run.returncode}:\n{run.stdout}\n{run.stderr[-5000:]}"
    [path] = tmp_path.glob("bench-*.json")
    report = json.loads(path.read_text())

    for key in FIGURES:
        assert isinstance(report[key], int | float) and not math.isnan(report[key]), key
    assert [key for key in FIGURES if report[key] < 0 and key != "extra_doorbells_pct"] == []
    assert report["extra_doorbells_pct"] >= -100  # fewer tasks than sagas would be a miscount
    assert isinstance(report["rss_growth_pct"], float)
    assert [run["accepted"] for run in report["e2e_runs"]] == [10]
    assert set(report["verdicts"].values()) <= {"PASS", "MISS", "n/a"}
    assert report["engine_outcomes"] == {"COMPLETED": 10}
    assert set(report["engine_refusals_outcomes"]) <= {"COMPLETED", "COMPENSATED"}
    # The ceiling writes what the engine writes (a retried step adds attempt rows to the engine's).
    ceiling, engine = report["ceiling_rows_per_saga"], report["engine_rows_per_saga"]
    assert {t: n for t, n in ceiling.items() if t != "saga_sagastep"} == {
        t: n for t, n in engine.items() if t != "saga_sagastep"
    }, "the ceiling (tools/bench/ceiling_worker.py) no longer does what the engine does"
    assert ceiling["saga_sagastep"] <= engine["saga_sagastep"]
    assert "engine / ceiling" in run.stdout
