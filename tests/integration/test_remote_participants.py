"""Every participant context served from a process of its own, through Kafka only, as the seeds'
services were: the sagas end as the contract says, and a context's consumers scale out (two in
one consumer group share its partitions) and lose nothing when one of them dies. In both
topologies: in services, each context's processes (its consumers and its relay) have its own
database only."""

import re
import uuid

import pytest

from orders import selectors as orders
from saga.models import SagaStep

from .conftest import Process, wait_for_terminal, wait_until
from .test_worker_sagas import Shop, order_status, place

pytestmark = [
    pytest.mark.worker,
    pytest.mark.topology("monolith", "services"),
    pytest.mark.django_db(transaction=True, databases="__all__"),
]

CONTEXTS = ("customers", "inventory", "payments")
ALL_REMOTE = {"SAGA_REMOTE_PARTICIPANTS": ",".join(CONTEXTS)}
PARTICIPANT_STEPS = {
    "reserve_stock",
    "hold_funds",
    "authorize_payment",
    "capture_payment",
    "consume_funds",
    "commit_stock",
}


@pytest.fixture
def shop(app_env, settings, start_worker, start_command) -> Shop:
    """The orchestrator's processes, with every participant remote; in services, each context's
    relay too (in the monolith the one relay sends every context's messages)."""
    settings.SAGA_REMOTE_PARTICIPANTS = list(CONTEXTS)
    start_worker(**ALL_REMOTE)
    start_command("relay_outbox", "--poll-interval", "0.2", **ALL_REMOTE)
    start_command("consume_events", **ALL_REMOTE)
    if settings.SHOP_TOPOLOGY == "services":
        for context in CONTEXTS:
            start_command("relay_outbox", "--poll-interval", "0.2", SHOP_CONTEXT=context)
    return Shop()


@pytest.fixture
def start_participant(start_command, settings):
    """A consumer of a context's commands: in services, in a process of the context's own."""

    def start(context: str) -> Process:
        own = {"SHOP_CONTEXT": context} if settings.SHOP_TOPOLOGY == "services" else {}
        return start_command("run_participant", context, **ALL_REMOTE, **own)

    return start


def orderable(*products) -> None:
    """In services, orders prices from its own list, kept from inventory's events by consume_events:
    a new product can be ordered once its event has come."""
    ids = {product.pk for product in products}
    wait_until(lambda: orders.priced_products_by_ids(ids=ids).keys() == ids, timeout=60, what="the price list")


def test_every_context_serves_its_steps_from_a_process_of_its_own(shop, start_participant):
    for context in CONTEXTS:
        start_participant(context)
    rich, poor, blocked = shop.customer("100.00"), shop.customer("5.00"), shop.customer("100.00", blocked=True)
    widget, odd = shop.product("10.00", 5), shop.product("5.33", 10)
    orderable(widget, odd)
    placed = {
        ("CONFIRMED", None): place(rich.pk, widget, 2),
        ("REJECTED", "OUT_OF_STOCK"): place(rich.pk, widget, 9),
        ("REJECTED", "INSUFFICIENT_CREDIT"): place(poor.pk, widget, 1),
        ("REJECTED", "UNKNOWN_CUSTOMER"): place(uuid.uuid4(), widget, 1),
        ("REJECTED", "PAYMENT_DECLINED"): place(blocked.pk, widget, 1),
        ("REJECTED", "PAYMENT_DECLINED", "provider"): place(rich.pk, odd, 2),  # 10.66: the sandbox declines
    }
    wait_for_terminal(list(placed.values()), timeout=180)
    assert {expected: order_status(order) for expected, order in placed.items()} == {
        expected: expected[:2] for expected in placed
    }
    shop.check()  # every refused order's stock and funds were released, through their participants
    confirmed = placed[("CONFIRMED", None)]
    went_through_kafka = SagaStep.objects.filter(saga_id=confirmed.saga_id, status=SagaStep.Status.SENT)
    assert set(went_through_kafka.values_list("name", flat=True)) == PARTICIPANT_STEPS


def assignments(process: Process, topic: str) -> list[set[int]]:
    """The partitions of `topic` the process was given, each time its group shared them out."""
    lines = [line for line in process.log_path.read_text().splitlines() if " assigned " in line]
    return [{int(n) for n in re.findall(re.escape(topic) + r"\[(\d+)\]", line)} for line in lines]


def test_two_consumers_of_a_context_share_its_partitions_and_one_may_die(shop, start_participant, settings):
    for context in ("customers", "payments"):
        start_participant(context)
    first, second = (start_participant("inventory") for _ in range(2))
    topic = settings.KAFKA_TOPICS["inventory_commands"]

    def shared() -> bool:
        mine, theirs = assignments(first, topic), assignments(second, topic)
        return bool(mine and theirs and mine[-1] and theirs[-1] and not mine[-1] & theirs[-1])

    wait_until(shared, timeout=60, what="the two inventory consumers to share its partitions")
    buyer = shop.customer("10000.00")
    products = [shop.product("1.00", 100) for _ in range(4)]
    orderable(*products)
    placed = [place(buyer.pk, products[n % 4], 1) for n in range(20)]
    wait_until(lambda: sum(order_status(o)[0] == "CONFIRMED" for o in placed) >= 5, timeout=120, what="some orders")
    placed += [place(buyer.pk, products[n % 4], 1) for n in range(20)]
    first.kill()  # with commands of the second batch on its partitions, read or not
    everything = set(range(settings.KAFKA_TOPIC_PARTITIONS))
    wait_until(lambda: assignments(second, topic)[-1] == everything, timeout=60, what="the survivor to take it all")
    wait_for_terminal(placed, timeout=240)
    assert {order_status(order) for order in placed} == {("CONFIRMED", None)}
    shop.check()
