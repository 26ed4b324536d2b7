"""History, as a shop that has run for a while has it: finished sagas with their orders, step
rows and sent outbox messages, written fast in SQL (INSERT ... SELECT generate_series), so the
engine can be measured again on full tables. Rows are shaped as the engine writes them (statuses,
step names, message types and sizes). Their ids are derived from the series number and so
ascend, which writes each index at its right edge: ten times faster than random UUIDs, for indexes
of the same depth, into which the engine's new (random) ids then go as in a shop that grew slowly."""

from __future__ import annotations

from .server import Observer

CHUNK = 100_000  # sagas per INSERT: keeps each statement's memory and WAL bounded
STEPS = (
    ("reserve_stock", "SUCCEEDED"),
    ("hold_funds", "SUCCEEDED"),
    ("authorize_payment", "SUCCEEDED"),
    ("await_acceptance", "SKIPPED"),
    ("confirm_order", "SUCCEEDED"),
    ("capture_payment", "SUCCEEDED"),
    ("consume_funds", "SUCCEEDED"),
    ("commit_stock", "SUCCEEDED"),
)
MESSAGES = (
    ("saga_events", "saga", "saga.started"),
    ("order_events", "order", "order.created"),
    ("inventory_events", "inventory", "stock.reserved"),
    ("customer_events", "customer", "funds.held"),
    ("payment_events", "payment", "payment.authorized"),
    ("order_events", "order", "order.confirmed"),
    ("payment_events", "payment", "payment.captured"),
    ("customer_events", "customer", "funds.consumed"),
    ("inventory_events", "inventory", "stock.committed"),
    ("saga_events", "saga", "saga.completed"),
)
# n -> a UUID of its own per kind of row, ascending with n
IDS = {
    kind: f"('{prefix}0000000-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid"
    for kind, prefix in {"saga": "a", "order": "b", "customer": "c", "product": "d", "product2": "e"}.items()
}
MESSAGE_ID = "('f0000000-0000-4000-8000-' || lpad(to_hex(n * 16 + m.position), 12, '0'))::uuid"
AGO = "now() - interval '30 days'"


def add_finished_sagas(observer: Observer, count: int) -> None:
    for first in range(1, count + 1, CHUNK):
        last = min(first + CHUNK - 1, count)
        for statement in (_ORDERS, _SAGAS, _steps(), _messages()):
            observer.query(statement.format(**IDS, ago=AGO, message=MESSAGE_ID), {"first": first, "last": last})
    observer.query("ANALYZE")


_SERIES = "FROM generate_series(%(first)s, %(last)s) AS n"
_ORDERS = f"""
INSERT INTO orders_order (id, customer_id, total, status, fulfillment, saga_id, request_fingerprint, created_at,
                          updated_at)
SELECT {{order}}, {{customer}}, 20.00, 'CONFIRMED', 'pickup', {{saga}}, '', {{ago}}, {{ago}}
{_SERIES}"""
_SAGAS = f"""
INSERT INTO saga_sagainstance (id, type, version, status, direction, step_index, current_step, attempts, crashes,
                               aggregate_id, correlation_id, data, reason, error, created_at, updated_at)
SELECT {{saga}}, 'place_order', 1, 'COMPLETED', 'FORWARD', 5, '', 0, 0, {{order}}, {{saga}},
       jsonb_build_object('order_id', {{order}}, 'customer_id', {{customer}}, 'total', '20.00',
                          'fulfillment', 'pickup', 'lines', jsonb_build_array(
                              jsonb_build_object('product_id', {{product}}, 'quantity', 1),
                              jsonb_build_object('product_id', {{product2}}, 'quantity', 2))),
       '', '', {{ago}}, {{ago}}
{_SERIES}"""


def _steps() -> str:
    values = ", ".join(f"('{name}', '{status}', {i})" for i, (name, status) in enumerate(STEPS))
    return f"""
INSERT INTO saga_sagastep (saga_id, name, kind, status, attempt, started_at, finished_at, error)
SELECT {{saga}}, step.name, 'action', step.status, 1, {{ago}}, {{ago}}, ''
{_SERIES} CROSS JOIN (VALUES {values}) AS step(name, status, position)"""


def _messages() -> str:
    values = ", ".join(f"('{topic}', '{context}', '{type}', {i})" for i, (topic, context, type) in enumerate(MESSAGES))
    return f"""
INSERT INTO saga_outboxmessage (id, topic, aggregate_type, aggregate_id, type, payload, correlation_id, created_at,
                                sent_at)
SELECT {{message}}, m.topic, m.context, ({{order}})::text, m.type,
       jsonb_build_object('order_id', {{order}}, 'saga_id', {{saga}}, 'customer_id', {{customer}}, 'total', '20.00'),
       {{saga}}, {{ago}}, {{ago}}
{_SERIES} CROSS JOIN (VALUES {values}) AS m(topic, context, type, position)"""
