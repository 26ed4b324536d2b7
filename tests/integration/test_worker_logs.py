"""Issue 24 (items 4 and 12): what a real worker and its beat write, as under `make run`: every
line about a saga names the saga, its order, step, attempt and request, in both formats (with two
worker processes, the lines of two sagas must be told apart); a failed attempt is a warning with
its error; an idle sweep writes nothing at INFO."""

import uuid

import pytest

from orders.saga import PLACE_ORDER
from tests.observability.log_lines import FORMATS, RETRIED_ONCE_THEN_COMPLETED, Line, parse

from .conftest import wait_until

pytestmark = pytest.mark.worker

STEP_NAMES = tuple(step.name for step in PLACE_ORDER.steps)


def written(worker) -> list[str]:
    return worker.log_path.read_text().splitlines()


def about(raw: str, *ids: str) -> bool:
    """Is this line about the saga (it names one of its ids, its type or one of its steps)?"""
    return any(word in raw for word in (*ids, PLACE_ORDER.name, *STEP_NAMES))


@pytest.mark.parametrize("format", FORMATS)
def test_every_line_a_worker_writes_about_a_saga_names_it_and_its_order(start_worker, api, customer, format):
    worker = start_worker(LOG_FORMAT=format, SAGA_FAULTS='{"authorize_payment": {"fail_attempts": 1}}')
    request_id = str(uuid.uuid4())
    body = {"customer_id": str(customer.pk), "amount": "10.00"}
    order = api.post("/api/orders", body, format="json", HTTP_X_REQUEST_ID=request_id).json()
    wait_until(lambda: any("place_order COMPLETED" in raw for raw in written(worker)), what="the saga to complete")

    lines: list[Line] = []
    for raw in written(worker):
        if about(raw, order["saga_id"], order["id"]):
            line = parse(format, raw)
            assert line is not None, f"a line about the saga, not in the {format} format: {raw!r}"
            lines.append(line)
    for line in lines:
        ids = (line.fields.get("saga_id"), line.fields.get("order_id"), line.fields.get("request_id"))
        assert ids == (order["saga_id"], order["id"], request_id), line
        assert line.fields.get("step") and line.fields.get("attempt"), line
    events = [(line.level, line.event.split(" in ")[0]) for line in lines]
    assert events == RETRIED_ONCE_THEN_COMPLETED, events
    [failure] = [line for line in lines if line.level == "warning"]
    assert failure.event.endswith("InjectedFault: injected failure of authorize_payment (action), attempt 1")
    assert (failure.fields["step"], failure.fields["attempt"]) == ("authorize_payment", "1")


def test_an_idle_sweeper_writes_nothing_at_info(start_worker, transactional_db):
    """The beat rings the sweeper every SAGA_SWEEP_INTERVAL (0.5 s here): with nothing due, its
    lines (Celery's for the task sent, received and done, and its own) are DEBUG."""
    worker = start_worker(LOG_FORMAT="json", LOG_LEVEL="DEBUG")

    def about_sweeps() -> list[Line]:
        return [line for raw in written(worker) if "sweep" in raw and (line := parse("json", raw))]

    def idle_sweeps() -> list[Line]:
        return [line for line in about_sweeps() if line.event.startswith("sweeper found no saga to ring")]

    wait_until(lambda: len(idle_sweeps()) >= 3, what="three idle sweeps")
    assert [line for line in about_sweeps() if line.level != "debug"] == []
