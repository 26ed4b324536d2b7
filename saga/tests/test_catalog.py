"""The catalog of messages: one type declared by its sender, and by a reader in the same project
(a context keeping a copy of another's data from its events)."""

import pytest

from saga.messaging import catalog, message_handler_register
from saga.messaging.catalog import Catalog
from saga.messaging.inbox import handlers
from saga.services import inbound
from saga.tests.toyshop.participant import ToysShipped


def test_a_type_sent_here_and_read_here_is_both():
    declared = Catalog()
    declared.declare("toy", {"toy.shipped": "order_id, carrier"})
    declared.declare("courier", {"courier.accepted": "order_id"}, inbound=True)
    declared.declare("toy", {"toy.shipped": "order_id"}, inbound=True)  # what the reader needs of it
    shipped = declared.get("toy.shipped")
    assert (shipped.payload, shipped.sent, shipped.inbound) == ("order_id, carrier", True, True)
    assert declared.roles(inbound=True) == ["courier_events", "toy_events"]
    assert declared.roles(inbound=False) == ["toy_events"]
    assert declared.shared_roles() == ["toy_events"]  # the consumer ignores the sender's other types there


def test_the_reader_may_declare_first():
    declared = Catalog()
    declared.declare("toy", {"toy.shipped": "order_id"}, inbound=True)
    declared.declare("toy", {"toy.shipped": "order_id, carrier"})
    declared.declare("toy", {"toy.shipped": "order_id, carrier"})  # the same declaration again
    assert declared.get("toy.shipped").payload == "order_id, carrier"
    assert declared.shared_roles() == ["toy_events"]


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("toy", "order_id", False), ("toy", "order_id, carrier", False)),  # two senders disagree
        (("toy", "order_id", True), ("toy", "carrier", True)),  # two readers disagree
        (("toy", "order_id", False), ("courier", "order_id", True)),  # read from another topic
    ],
)
def test_declarations_that_disagree_are_refused(first, second):
    declared = Catalog()
    context, payload, inbound_ = first
    declared.declare(context, {"toy.shipped": payload}, inbound=inbound_)
    context, payload, inbound_ = second
    with pytest.raises(ValueError, match="declared twice, differently"):
        declared.declare(context, {"toy.shipped": payload}, inbound=inbound_)


@pytest.fixture
def registrations_restored(monkeypatch):
    """What the test registers goes with it (the catalog and the handlers are the process's)."""
    monkeypatch.setattr(catalog, "_types", dict(catalog._types))
    monkeypatch.setattr(handlers, "_by_type", dict(handlers._by_type))


def test_consume_events_reads_a_shared_topic_leniently(registrations_restored):
    message_handler_register(context="toy", message=ToysShipped, handler=lambda message: None)
    topics, lenient, served = inbound()
    assert topics == ["courier_events", "toy_events"]  # once, though both read and sent here
    assert lenient == ["toy_events"] and served.knows("toy.shipped")


def test_the_table_shows_a_type_sent_and_read_here_as_sent():
    declared = Catalog()
    declared.declare("toy", {"toy.shipped": "order_id, carrier"})
    before = declared.table()
    declared.declare("toy", {"toy.shipped": "order_id"}, inbound=True)
    assert declared.table() == before
    assert before.splitlines()[-1] == "| `toy_events` | `toy.shipped` | order_id, carrier |"
