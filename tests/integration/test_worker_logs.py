"""Issue 24 (item 4): what a real worker writes, as under `make run`: every line about a saga
names the saga, its order, step, attempt and request, in both formats (with two worker
processes, the lines of two sagas must be told apart); a failed attempt is a warning with its
error."""

import uuid

import pytest

from orders.saga import PLACE_ORDER
from tests.observability.log_lines import FORMATS, Line, parse

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
    assert events == [
        ("warning", "action authorize_payment attempt 1: FAILED"),
        ("info", "action authorize_payment attempt 2: SUCCEEDED"),
        ("info", "action confirm_order attempt 1: SUCCEEDED"),
        ("info", "action capture_payment_and_commit_stock attempt 1: SUCCEEDED"),
        ("info", "saga place_order COMPLETED"),
    ], events
    assert lines[0].event.endswith("InjectedFault: injected failure of authorize_payment (action), attempt 1")
    assert (lines[0].fields["step"], lines[0].fields["attempt"]) == ("authorize_payment", "1")
