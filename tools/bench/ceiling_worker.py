"""One process of the ceiling: the database work of place-order sagas as hand-written SQL over
psycopg2, no Django, no Celery. Per saga, the rows the engine writes for a happy pickup order of
two items (tools/bench/ceiling.py says how this was established): the order placed with its lines,
saga and two outbox rows in one transaction (as the API, and the engine benchmark, place an
order), then one transaction per step of the definition (reserve stock, hold funds, authorize
payment, the skipped acceptance wait, confirm, capture payment, consume funds, commit stock),
each locking the saga row and the same participant rows (SELECT ... FOR UPDATE), changing the
same rows and writing the same outbox messages and step rows; no claim transactions, no savepoints, no advisory locks.

    python -m tools.bench.ceiling_worker PLAN.json   # prints "ready", waits for a line on stdin, runs,
                                               # prints {"sagas": N, "seconds": S}
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import psycopg2.extensions
import psycopg2.extras

from tools.procs import connect

Cursor = psycopg2.extensions.cursor
TYPE = "place_order"
STALL_AFTER = "30 seconds"  # wake_at, as the engine sets it at each move


def main(plan_path: str) -> None:
    with open(plan_path) as plan_file:
        plan = json.load(plan_file)
    psycopg2.extras.register_uuid()
    conn = connect(plan["database_url"])
    conn.autocommit = False
    print("ready", flush=True)
    sys.stdin.readline()
    began = time.perf_counter()
    for order in plan["orders"]:
        saga = Saga(order, plan["topics"])
        for step in saga.transactions():
            with conn, conn.cursor() as cursor:
                step(cursor)
    print(json.dumps({"sagas": len(plan["orders"]), "seconds": time.perf_counter() - began}), flush=True)
    conn.close()


class Saga:
    """One place-order saga's rows."""

    def __init__(self, order: dict[str, Any], topics: dict[str, str]):
        self.order_id, self.saga_id = uuid.uuid4(), uuid.uuid4()
        self.customer_id = uuid.UUID(order["customer_id"])
        self.items = [(uuid.UUID(i["product_id"]), i["sku"], i["quantity"]) for i in order["items"]]
        self.topics = topics
        self.total = Decimal(0)
        self.data: dict[str, Any] = {}

    def transactions(self) -> tuple[Callable[[Cursor], None], ...]:
        """Placing the order, then one per step of the definition."""
        return (
            self.place,
            self.reserve_stock,
            self.hold_funds,
            self.authorize_payment,
            self.skip_wait,
            self.confirm,
            self.capture_payment,
            self.consume_funds,
            self.commit_stock,
        )

    def place(self, cur: Cursor) -> None:
        cur.execute(
            "SELECT id, sku, price FROM inventory_product WHERE id = ANY(%s) ORDER BY sku", [[i[0] for i in self.items]]
        )
        prices = {row[0]: row[2] for row in cur.fetchall()}
        self.total = sum((prices[pid] * qty for pid, _, qty in self.items), Decimal(0))
        lines = [{"product_id": str(pid), "quantity": qty} for pid, _, qty in self.items]
        self.data = {"lines": lines, "order_id": str(self.order_id), "customer_id": str(self.customer_id)}
        self.data |= {"total": str(self.total), "fulfillment": "pickup"}
        cur.execute(
            "INSERT INTO orders_order (id, customer_id, total, status, fulfillment, saga_id, request_fingerprint, "
            "created_at, updated_at) VALUES (%s, %s, %s, 'PENDING', 'pickup', %s, '', now(), now())",
            [self.order_id, self.customer_id, self.total, self.saga_id],
        )
        cur.execute(
            "INSERT INTO orders_orderline (order_id, product_id, sku, quantity, unit_price) "
            "SELECT %s, * FROM UNNEST(%s::uuid[], %s::varchar[], %s::int[], %s::numeric[])",
            [
                self.order_id,
                *(list(column) for column in zip(*[(p, s, q, prices[p]) for p, s, q in self.items], strict=True)),
            ],
        )
        cur.execute(
            "INSERT INTO saga_sagainstance (id, type, version, status, direction, step_index, current_step, attempts, "
            "crashes, aggregate_id, correlation_id, data, reason, error, wake_at, deadline, created_at, updated_at) "
            "VALUES (%s, %s, 2, 'STARTED', 'FORWARD', 0, 'reserve_stock', 0, 0, %s, %s, %s, '', '', "
            f"now() + interval '{STALL_AFTER}', now() + interval '1 day 30 minutes', now(), now())",
            [self.saga_id, TYPE, self.order_id, self.saga_id, json.dumps(self.data)],
        )
        self.announce(cur, "saga_events", "saga", "saga.started", self.saga_payload(version=2))
        items = [
            {"product_id": str(pid), "sku": sku, "quantity": qty, "unit_price": str(prices[pid])}
            for pid, sku, qty in self.items
        ]
        created = {"customer_id": str(self.customer_id), "total": str(self.total), "items": items}
        self.announce(cur, "order_events", "order", "order.created", {**created, "fulfillment": "pickup"})

    def reserve_stock(self, cur: Cursor) -> None:
        self.lock_saga(cur)
        cur.execute(
            "SELECT id, stock, reserved FROM inventory_product WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
            [[i[0] for i in self.items]],
        )
        cur.fetchall()
        cur.execute(
            "INSERT INTO inventory_stockreservation (order_id, reason, created_at, updated_at, status) "
            "VALUES (%s, '', now(), now(), 'RESERVED')",
            [self.order_id],
        )
        cur.execute(
            "INSERT INTO inventory_stockreservationline (reservation_id, product_id, quantity) "
            "SELECT %s, * FROM UNNEST(%s::uuid[], %s::int[])",
            [self.order_id, [i[0] for i in self.items], [i[2] for i in self.items]],
        )
        for pid, _, qty in self.items:
            cur.execute("UPDATE inventory_product SET reserved = reserved + %s WHERE id = %s", [qty, pid])
        self.announce(cur, "inventory_events", "inventory", "stock.reserved", self.stock())
        self.move(cur, "reserve_stock", 1, "hold_funds")

    def hold_funds(self, cur: Cursor) -> None:
        self.lock_saga(cur)
        customer = [self.customer_id]
        cur.execute("SELECT balance, reserved, blocked FROM customers_customer WHERE id = %s FOR UPDATE", customer)
        cur.fetchone()
        cur.execute("UPDATE customers_customer SET reserved = reserved + %s WHERE id = %s", [self.total, *customer])
        cur.execute(
            "INSERT INTO customers_fundshold (order_id, reason, created_at, updated_at, customer_id, amount, status) "
            "VALUES (%s, '', now(), now(), %s, %s, 'HELD')",
            [self.order_id, self.customer_id, self.total],
        )
        self.announce(cur, "customer_events", "customer", "funds.held", self.money())
        self.move(cur, "hold_funds", 2, "authorize_payment")

    def authorize_payment(self, cur: Cursor) -> None:
        self.lock_saga(cur)
        cur.execute(
            "INSERT INTO payments_payment (order_id, reason, created_at, updated_at, customer_id, amount, status, "
            "provider_reference) VALUES (%s, '', now(), now(), %s, %s, 'AUTHORIZED', %s)",
            [self.order_id, self.customer_id, self.total, self.reference()],
        )
        self.announce(cur, "payment_events", "payment", "payment.authorized", self.money())
        self.move(cur, "authorize_payment", 3, "await_acceptance")

    def skip_wait(self, cur: Cursor) -> None:
        self.lock_saga(cur)
        self.move(cur, "await_acceptance", 4, "confirm_order", status="SKIPPED")

    def confirm(self, cur: Cursor) -> None:
        self.lock_saga(cur)
        cur.execute("SELECT status FROM orders_order WHERE id = %s FOR UPDATE", [self.order_id])
        cur.fetchone()
        cur.execute(
            "UPDATE orders_order SET status = 'CONFIRMED', reason = NULL, updated_at = now() WHERE id = %s",
            [self.order_id],
        )
        self.announce(cur, "order_events", "order", "order.confirmed", {"total": str(self.total)})
        self.move(cur, "confirm_order", 5, "capture_payment")

    def capture_payment(self, cur: Cursor) -> None:
        self.lock_saga(cur)
        cur.execute("SELECT status FROM payments_payment WHERE order_id = %s FOR UPDATE", [self.order_id])
        cur.fetchone()
        cur.execute(
            "UPDATE payments_payment SET status = 'CAPTURED', updated_at = now() WHERE order_id = %s", [self.order_id]
        )
        self.announce(cur, "payment_events", "payment", "payment.captured", self.money())
        self.move(cur, "capture_payment", 6, "consume_funds")

    def consume_funds(self, cur: Cursor) -> None:
        self.lock_saga(cur)
        cur.execute("SELECT status FROM customers_fundshold WHERE order_id = %s FOR UPDATE", [self.order_id])
        cur.fetchone()
        cur.execute(
            "UPDATE customers_customer SET balance = balance - %s, reserved = reserved - %s WHERE id = %s",
            [self.total, self.total, self.customer_id],
        )
        cur.execute(
            "UPDATE customers_fundshold SET status = 'CONSUMED', updated_at = now() WHERE order_id = %s",
            [self.order_id],
        )
        self.announce(cur, "customer_events", "customer", "funds.consumed", self.money())
        self.move(cur, "consume_funds", 7, "commit_stock")

    def commit_stock(self, cur: Cursor) -> None:
        self.lock_saga(cur)
        cur.execute("SELECT status FROM inventory_stockreservation WHERE order_id = %s FOR UPDATE", [self.order_id])
        cur.fetchone()
        cur.execute(
            "SELECT product_id, quantity FROM inventory_stockreservationline WHERE reservation_id = %s "
            "ORDER BY product_id",
            [self.order_id],
        )
        lines = cur.fetchall()
        cur.execute(
            "SELECT id FROM inventory_product WHERE id = ANY(%s) ORDER BY id FOR UPDATE", [[pid for pid, _ in lines]]
        )
        cur.fetchall()
        for pid, qty in lines:
            cur.execute(
                "UPDATE inventory_product SET stock = stock - %s, reserved = reserved - %s WHERE id = %s",
                [qty, qty, pid],
            )
        cur.execute(
            "UPDATE inventory_stockreservation SET status = 'COMMITTED', updated_at = now() WHERE order_id = %s",
            [self.order_id],
        )
        self.announce(cur, "inventory_events", "inventory", "stock.committed", self.stock())
        self.move(cur, "commit_stock", 8, "", status="SUCCEEDED", saga_status="COMPLETED")
        self.announce(cur, "saga_events", "saga", "saga.completed", self.saga_payload())

    def lock_saga(self, cur: Cursor) -> None:
        cur.execute("SELECT status, step_index, data FROM saga_sagainstance WHERE id = %s FOR UPDATE", [self.saga_id])
        cur.fetchone()

    def move(
        self,
        cur: Cursor,
        step: str,
        index: int,
        next_step: str,
        status: str = "SUCCEEDED",
        saga_status: str = "STARTED",
    ) -> None:
        """The step's history row, and the saga moved past it."""
        cur.execute(
            "INSERT INTO saga_sagastep (saga_id, name, kind, status, attempt, started_at, finished_at, error) "
            "VALUES (%s, %s, 'action', %s, 1, now(), now(), '')",
            [self.saga_id, step, status],
        )
        cur.execute(
            "UPDATE saga_sagainstance SET status = %s, step_index = %s, current_step = %s, attempts = 0, "
            f"wake_at = CASE WHEN %s = 'STARTED' THEN now() + interval '{STALL_AFTER}' END, updated_at = now() "
            "WHERE id = %s",
            [saga_status, index, next_step, saga_status, self.saga_id],
        )

    def announce(self, cur: Cursor, topic: str, context: str, type: str, payload: dict[str, Any]) -> None:
        cur.execute(
            "INSERT INTO saga_outboxmessage (id, topic, aggregate_type, aggregate_id, type, payload, correlation_id, "
            "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, now())",
            [
                uuid.uuid4(),
                self.topics.get(topic, topic),
                context,
                str(self.order_id),
                type,
                json.dumps({"order_id": str(self.order_id), **payload}),
                self.saga_id,
            ],
        )

    def reference(self) -> str:
        """The sandbox provider's reference, as payments/gateway.py makes it."""
        return f"sandbox-{uuid.uuid5(uuid.NAMESPACE_OID, str(self.order_id))}"

    def money(self) -> dict[str, Any]:
        """The payload of a funds or payment event (the order's id is added to every payload)."""
        return {"customer_id": str(self.customer_id), "amount": str(self.total), "reason": ""}

    def stock(self) -> dict[str, Any]:
        return {"lines": self.data["lines"], "reason": ""}

    def saga_payload(self, **details: Any) -> dict[str, Any]:
        return {"saga_id": str(self.saga_id), "saga_type": TYPE, "aggregate_id": str(self.order_id), **details}


if __name__ == "__main__":
    main(sys.argv[1])
