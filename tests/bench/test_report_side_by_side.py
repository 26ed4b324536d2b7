"""The side-by-side part of the bench's table, from a report's figures (no services started): each
figure of both topologies on one line with the ratio services / monolith, and where a services
saga's time goes."""

from tools.bench.report import side_by_side

MONOLITH = {
    "engine_sagas_per_s": 20.0,
    "commits_per_saga": 9.0,
    "broker_cpu_ms_per_saga": 0.01,
    "alone_ms": 100.0,
    "e2e_runs": [{"rate": 5.0, "p50_ms": 100.0, "p99_ms": 200.0, "web_cpu_ms_per_order": 10.0}],
}
SERVICES = {
    "sagas": 500,
    "engine_sagas_per_s": 5.0,
    "commits_per_saga": 120.0,
    "commits_per_saga_by_context": {"orders": 76.0, "customers": 14.0, "inventory": 16.0, "payments": 14.0},
    "broker_cpu_ms_per_saga": 10.0,
    "relays_cpu_ms_per_saga": 30.0,
    "alone_ms": 1500.0,
    "e2e_runs": [
        {"rate": 1.0, "p50_ms": 1600.0, "p99_ms": 1900.0, "web_cpu_ms_per_order": 12.0},
        {"rate": 5.0, "p50_ms": 2000.0, "p99_ms": 2500.0, "web_cpu_ms_per_order": 12.0},
    ],
    "hops": {
        "to_first_command": 12.0,
        "orders_relay": 6.0,
        "to_participant": 70.0,
        "participant": 6.0,
        "participant_relay": 5.0,
        "to_orders": 150.0,
        "orders_next": 15.0,
        "remote_steps": 6.0,
    },
}


def line(lines: list[str], start: str) -> list[str]:
    [found] = [text for text in lines if text.startswith(start)]
    return found.split()


def test_each_figure_beside_the_monolith_with_the_ratio():
    lines = side_by_side(MONOLITH, SERVICES)

    assert line(lines, "engine, happy path")[-3:] == ["20.0", "5.0", "0.25"]
    assert line(lines, "  commits per saga")[-3:] == ["9.0", "120.0", "13.33"]
    assert line(lines, "    orders / customers")[-7:] == ["76.0", "/", "14.0", "/", "16.0", "/", "14.0"]
    assert line(lines, "  of which the Kafka broker's")[-2:] == ["0.0", "10.0"]  # no ratio to nothing
    assert line(lines, "  of which the relays'")[-2:] == ["n/a", "30.0"]  # the monolith runs none
    assert line(lines, "e2e 5/s")[-4:] == ["2,000", "/", "2,500", "20.00"]
    assert line(lines, "e2e 1/s")[-4:] == ["n/a", "1,600", "/", "1,900"]


def test_where_a_services_saga_goes_step_by_step():
    lines = side_by_side(MONOLITH, SERVICES)

    assert any(text.startswith("a services saga alone: 6 remote steps of 252 ms each") for text in lines)
    assert line(lines, "  Kafka -> orders' inbox")[-1] == "150"
