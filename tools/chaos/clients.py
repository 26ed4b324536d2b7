"""The clients of a chaos run: threads placing orders through the HTTP API, as shops' users do.

Each client draws scenarios from a realistic mix (credit-only and item orders, deliveries accepted
through the API or through Kafka, some before the saga reaches its wait, cancelled or left to time
out, duplicate submissions, races for scarce stock and for one customer's last funds, unknown
customers, declined payments) and waits for each order to settle before the next one, so the load
is as high as the stack sustains and no higher. Like careful clients, they send an Idempotency-Key
with most orders and retry those (same key, same body) after an error or a lost connection; orders
without a key are not retried. Everything sent and answered is recorded for the checker.
"""

from __future__ import annotations

import http.client
import json
import random
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

from kafka import KafkaProducer

T = TypeVar("T")
TERMINAL = {"CONFIRMED", "REJECTED", "CANCELLED"}
RICH = Decimal("1000000.00")  # the regular customers never run out of money ...
PLENTY = 1_000_000  # ... and the regular products never run out of stock
# Whether orders can price a product by its id yet: at once in the monolith; in the services
# topology once orders' price list has consumed the product's event (docs/price-list.md).
Orderable = Callable[[str], bool]
# How long a client waits for a product it created to become orderable: longer than a frozen
# broker or a killed consumer holds the product's event back.
ORDERABLE_TIMEOUT = 60.0


@dataclass
class Exchange:
    """One HTTP request and its answer (status 0: no answer, e.g. the connection was reset)."""

    at: float  # wall-clock time it was sent
    method: str
    path: str
    status: int
    elapsed: float
    scenario: str
    error: str = ""
    key: str | None = None  # its Idempotency-Key


@dataclass
class Answer:
    status: int
    data: Any
    statuses: list[int]  # every attempt's status, retries included


@dataclass
class Acceptance:
    via: str  # "api" or "kafka"
    early: bool  # sent without waiting to see the order wait for it
    sent_at: float
    statuses: list[int] = field(default_factory=list)  # api
    message_id: str = ""  # kafka
    acked_at: float | None = None  # kafka: when the broker acknowledged it
    error: str = ""


@dataclass
class Placed:
    scenario: str
    body: dict[str, Any]
    key: str | None
    statuses: list[int]
    order_id: str | None
    sent_at: float
    # The outcome the order must reach whatever the faults ("REJECTED/UNKNOWN_CUSTOMER"), if any.
    expect: str = ""
    never_accepted: bool = False  # left to time out: it must not be confirmed
    acceptance: Acceptance | None = None
    cancel_statuses: list[int] = field(default_factory=list)
    seen: str = ""  # the last status the client saw


@dataclass
class Duplicates:
    """One Idempotency-Key sent concurrently with one body, then once with another."""

    key: str
    answers: list[Answer]
    other_body: Answer | None = None


@dataclass
class Record:
    t0: float = 0.0  # wall-clock time the load and the faults began
    exchanges: list[Exchange] = field(default_factory=list)
    placed: list[Placed] = field(default_factory=list)
    duplicates: list[Duplicates] = field(default_factory=list)
    start_balances: dict[str, Decimal] = field(default_factory=dict)
    start_stock: dict[str, int] = field(default_factory=dict)
    client_errors: list[str] = field(default_factory=list)


class Api:
    """JSON over HTTP to 127.0.0.1, with the run's token; every exchange is recorded."""

    def __init__(self, port: int, token: str, record: Record):
        self.port, self.token, self.record = port, token, record

    def request(
        self, method: str, path: str, body: Any = None, *, key: str | None = None, retry: bool = False, scenario: str
    ) -> Answer:
        statuses: list[int] = []
        for attempt in range(5 if retry else 1):
            if attempt:
                time.sleep(min(0.5 * 2 ** (attempt - 1), 4.0))
            status, data = self._once(method, path, body, key, scenario)
            statuses.append(status)
            if 0 < status < 500:
                break
        return Answer(status, data, statuses)

    def _once(self, method: str, path: str, body: Any, key: str | None, scenario: str) -> tuple[int, Any]:
        headers = {"Authorization": f"Token {self.token}", "Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if key is not None:
            headers["Idempotency-Key"] = key
        sent, began = time.time(), time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request(method, path, body=None if body is None else json.dumps(body), headers=headers)
            response = conn.getresponse()
            raw, status = response.read(), response.status
            if status == 503 and not response.getheader("Retry-After"):
                raw = b"503 without Retry-After: " + raw
        except (OSError, http.client.HTTPException) as failure:
            raw, status = f"{type(failure).__name__}: {failure}".encode(), 0
        finally:
            conn.close()
        try:
            data = json.loads(raw) if status else None
        except ValueError:
            data = None
        error = _summary(raw) if status == 0 or status >= 500 else ""
        self.record.exchanges.append(
            Exchange(sent, method, path, status, round(time.monotonic() - began, 3), scenario, error, key)
        )
        return status, data


def _summary(raw: bytes) -> str:
    """What a 5xx said: the title of Django's error page, or the start of the body."""
    text = raw.decode(errors="replace")
    title = re.search(r"<title>(.*?)</title>", text, re.S)
    text = title.group(1) if title else text.split("Request Method:")[0]  # Django's plain-text error page
    return re.sub(r"\s+", " ", text).strip()[:200]


def shape(path: str) -> str:
    """The route of a path: /api/orders/{id}/accept."""
    return re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}", "{id}", path.split("?")[0])


class Courier:
    """The courier service: `fulfillment.accepted` sent to Kafka, as the contract's envelope."""

    def __init__(self, bootstrap: str, topic: str):
        self.bootstrap, self.topic = bootstrap, topic
        self._producer: KafkaProducer | None = None
        self._lock = threading.Lock()

    def producer(self) -> KafkaProducer:
        with self._lock:
            if self._producer is None:
                self._producer = KafkaProducer(
                    bootstrap_servers=self.bootstrap, acks="all", request_timeout_ms=30_000, max_block_ms=120_000
                )
            return self._producer

    def accept(self, order_id: str, acceptance: Acceptance) -> None:
        acceptance.message_id = str(uuid.uuid4())
        envelope = {
            "id": acceptance.message_id,
            "type": "fulfillment.accepted",
            "correlation_id": None,
            "causation_id": None,
            "timestamp": datetime.now(UTC).isoformat(),
            "schema_version": 1,
            "payload": {"order_id": order_id},
        }
        try:
            future = self.producer().send(
                self.topic,
                key=order_id.encode(),
                value=json.dumps(envelope).encode(),
                headers=[("type", b"fulfillment.accepted")],
            )
            future.get(timeout=180)
            acceptance.acked_at = time.time()
        except Exception as error:  # noqa: BLE001 - a courier message that did not go out is recorded as such
            acceptance.error = f"{type(error).__name__}: {error}"

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close(timeout=10)


def together(calls: list[Callable[[], T]]) -> list[T]:
    """Run the calls at the same moment, each in its own thread; their results in order."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], T]) -> None:
        barrier.wait()
        results[index] = call()

    threads = [threading.Thread(target=run, args=(i, c), daemon=True) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@dataclass
class World:
    """The customers and products every client uses (the races create their own)."""

    rich: list[str]
    blocked: str
    products: list[tuple[str, str, Decimal]]  # id, sku, price


def create_customer(api: Api, record: Record, balance: Decimal, *, blocked: bool = False, scenario: str) -> str | None:
    """Create a customer; after an error, find it by its email (it may have been created)."""
    email = f"c-{uuid.uuid4().hex[:12]}@chaos.example"
    body = {"name": email.split("@")[0], "email": email, "balance": str(balance), "blocked": blocked}
    answer = api.request("POST", "/api/customers", body, scenario=scenario)
    customer_id = answer.data.get("id") if answer.status == 201 and isinstance(answer.data, dict) else None
    if customer_id is None and (answer.status == 0 or answer.status >= 500):
        found = api.request("GET", f"/api/customers?email={email}", retry=True, scenario=scenario)
        results = found.data.get("results", []) if isinstance(found.data, dict) else []
        customer_id = results[0]["id"] if results else None
    if customer_id is not None:
        record.start_balances[customer_id] = balance
    return customer_id


def create_product(
    api: Api, record: Record, price: Decimal, stock: int, *, scenario: str, sku: str | None = None
) -> str | None:
    """Create a product; after an error, find it by its SKU (it may have been created)."""
    sku = sku or f"p-{uuid.uuid4().hex[:12]}"
    body = {"sku": sku, "name": sku, "price": str(price), "stock": stock}
    answer = api.request("POST", "/api/products", body, scenario=scenario)
    product_id = answer.data.get("id") if answer.status == 201 and isinstance(answer.data, dict) else None
    if product_id is None and (answer.status == 0 or answer.status >= 500):
        found = api.request("GET", f"/api/products?sku={sku}", retry=True, scenario=scenario)
        results = found.data.get("results", []) if isinstance(found.data, dict) else []
        product_id = results[0]["id"] if results else None
    if product_id is not None:
        record.start_stock[product_id] = stock
    return product_id


def wait_until_orderable(product_id: str, orderable: Orderable, stop: threading.Event | None = None) -> bool:
    """Whether the product became orderable before ORDERABLE_TIMEOUT (or `stop`), as a client that
    created it waits before selling it: its orders would be refused as naming no product (409)."""
    deadline = time.monotonic() + ORDERABLE_TIMEOUT
    while not orderable(product_id):
        if time.monotonic() >= deadline or (stop is not None and stop.is_set()):
            return False
        time.sleep(0.2)
    return True


def build_world(api: Api, record: Record, rng: random.Random, orderable: Orderable) -> World:
    rich = [create_customer(api, record, RICH, scenario="setup") for _ in range(20)]
    blocked = create_customer(api, record, Decimal("1000.00"), blocked=True, scenario="setup")
    products = []
    for number in range(12):
        sku, price = f"CHAOS-{number}", Decimal(rng.randint(1, 40)) + rng.choice([Decimal("0"), Decimal("0.50")])
        products.append((create_product(api, record, price, PLENTY, scenario="setup", sku=sku), sku, price))
    # Prices in whole or half units: no total of items ends in .66, the sandbox's decline.
    customers = [c for c in rich if c is not None]
    catalog = [(p, sku, price) for p, sku, price in products if p is not None]
    if len(customers) < len(rich) or blocked is None or len(catalog) < len(products):
        raise RuntimeError("the shop's customers and products could not be created: see the HTTP errors")
    unpriced = [sku for product, sku, _ in catalog if not wait_until_orderable(product, orderable)]
    if unpriced:
        raise RuntimeError(f"products never became orderable within {ORDERABLE_TIMEOUT:.0f} s: {', '.join(unpriced)}")
    return World(rich=customers, blocked=blocked, products=catalog)


class Client(threading.Thread):
    """One user of the shop, drawing scenarios until told to stop."""

    MIX: ClassVar[dict[str, int]] = {
        "credit_only": 16,
        "multi_item": 18,
        "single_item": 10,
        "delivery_accept_api": 9,
        "delivery_accept_kafka": 7,
        "delivery_cancel": 5,
        "delivery_timeout": 4,
        "duplicates": 6,
        "scarce_stock_race": 2,  # each places three to seven orders at once
        "last_funds_race": 2,
        "unknown_customer": 4,
        "declined_payment": 4,
        "blocked_customer": 2,
    }

    def __init__(
        self,
        index: int,
        *,
        api: Api,
        world: World,
        record: Record,
        courier: Courier,
        seed: int,
        stop: threading.Event,
        acceptance_timeout: float,
        orderable: Orderable,
    ):
        super().__init__(name=f"client-{index}", daemon=True)
        self.api, self.world, self.record, self.courier, self.stop = api, world, record, courier, stop
        self.orderable = orderable
        self.rng = random.Random(f"{seed}-{index}")
        self.acceptance_timeout = acceptance_timeout

    def run(self) -> None:
        names, weights = list(self.MIX), list(self.MIX.values())
        while not self.stop.is_set():
            scenario = self.rng.choices(names, weights)[0]
            try:
                getattr(self, scenario)()
            except Exception as error:  # noqa: BLE001 - a client's own bug is reported, and the client goes on
                self.record.client_errors.append(f"{scenario}: {type(error).__name__}: {error}")

    # --- helpers -----------------------------------------------------------------------------

    def customer(self) -> str:
        return self.rng.choice(self.world.rich)

    def amount(self) -> str:
        cents = self.rng.choice([c for c in range(100) if c != 66])  # .66 is the sandbox's decline
        return f"{self.rng.randint(1, 60)}.{cents:02d}"

    def items(self, count: int) -> list[dict[str, Any]]:
        chosen = self.rng.sample(self.world.products, count)
        by_sku = self.rng.random() < 0.3
        return [
            {"sku": sku, "quantity": self.rng.randint(1, 3)}
            if by_sku
            else {"product_id": p, "quantity": self.rng.randint(1, 3)}
            for p, sku, _ in chosen
        ]

    def order_body(self, *, delivery: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {"customer_id": self.customer()}
        if self.rng.random() < 0.5:
            body["amount"] = self.amount()
        else:
            body["items"] = self.items(self.rng.randint(1, 3))
        if delivery:
            body["fulfillment"] = "delivery"
        return body

    def place(self, scenario: str, body: dict[str, Any], *, keyed: bool | None = None, **expect: Any) -> Placed:
        keyed = self.rng.random() < 0.85 if keyed is None else keyed
        key = str(uuid.uuid4()) if keyed else None
        sent = time.time()
        answer = self.api.request("POST", "/api/orders", body, key=key, retry=keyed, scenario=scenario)
        order_id = answer.data.get("id") if answer.status == 202 and isinstance(answer.data, dict) else None
        placed = Placed(scenario, body, key, answer.statuses, order_id, sent, **expect)
        self.record.placed.append(placed)
        return placed

    def status(self, placed: Placed) -> str:
        answer = self.api.request("GET", f"/api/orders/{placed.order_id}/status", retry=True, scenario=placed.scenario)
        if answer.status == 200 and isinstance(answer.data, dict):
            placed.seen = str(answer.data.get("status"))
        return placed.seen

    def wait_for(self, placed: Placed, wanted: set[str], timeout: float) -> str:
        """Poll the order's status (backing off) until it is in `wanted` or final, or time runs out."""
        deadline, pause = time.monotonic() + timeout, 0.4
        while placed.order_id and time.monotonic() < deadline and not self.stop.is_set():
            if self.status(placed) in wanted | TERMINAL:
                break
            time.sleep(pause)
            pause = min(pause * 1.5, 2.0)
        return placed.seen

    def settle(self, placed: Placed) -> None:
        """Watch the order until it is final, as a checkout page does; but not for long: a stuck
        shop (a frozen broker) keeps getting orders from new customers."""
        self.wait_for(placed, TERMINAL, timeout=10 + self.acceptance_timeout)

    # --- scenarios ---------------------------------------------------------------------------

    def credit_only(self) -> None:
        self.settle(self.place("credit_only", {"customer_id": self.customer(), "amount": self.amount()}))

    def multi_item(self) -> None:
        body = {"customer_id": self.customer(), "items": self.items(self.rng.randint(2, 4))}
        self.settle(self.place("multi_item", body))

    def single_item(self) -> None:
        self.settle(self.place("single_item", {"customer_id": self.customer(), "items": self.items(1)}))

    def _delivery_accepted(self, via: str) -> None:
        placed = self.place(f"delivery_accept_{via}", self.order_body(delivery=True))
        if placed.order_id is None:
            return
        early = self.rng.random() < 0.35  # the courier may answer before the saga reaches its wait
        if not early:
            if self.wait_for(placed, {"AWAITING_ACCEPTANCE"}, timeout=60) != "AWAITING_ACCEPTANCE":
                return self.settle(placed)
            time.sleep(self.rng.uniform(0, self.acceptance_timeout / 4))
        placed.acceptance = acceptance = Acceptance(via=via, early=early, sent_at=time.time())
        if via == "api":
            path = f"/api/orders/{placed.order_id}/accept"
            acceptance.statuses = self.api.request("POST", path, retry=True, scenario=placed.scenario).statuses
        else:
            self.courier.accept(placed.order_id, acceptance)
        self.settle(placed)

    def delivery_accept_api(self) -> None:
        self._delivery_accepted("api")

    def delivery_accept_kafka(self) -> None:
        self._delivery_accepted("kafka")

    def delivery_cancel(self) -> None:
        placed = self.place("delivery_cancel", self.order_body(delivery=True))
        if placed.order_id is None:
            return
        if self.rng.random() > 0.3 and self.wait_for(placed, {"AWAITING_ACCEPTANCE"}, timeout=60) in TERMINAL:
            return
        path = f"/api/orders/{placed.order_id}/cancel"
        placed.cancel_statuses = self.api.request("POST", path, retry=True, scenario=placed.scenario).statuses
        self.settle(placed)

    def delivery_timeout(self) -> None:
        self.settle(self.place("delivery_timeout", self.order_body(delivery=True), never_accepted=True))

    def duplicates(self) -> None:
        """One Idempotency-Key: the same body two to four times at once, then another body once."""
        key, body = str(uuid.uuid4()), self.order_body()
        other = {**body, "customer_id": self.rng.choice([c for c in self.world.rich if c != body["customer_id"]])}

        def send(sent: dict[str, Any]) -> Answer:
            return self.api.request("POST", "/api/orders", sent, key=key, retry=True, scenario="duplicates")

        group = Duplicates(key=key, answers=together([lambda: send(body)] * self.rng.randint(2, 4)))
        group.other_body = send(other)
        self.record.duplicates.append(group)
        first = next((a for a in group.answers if a.status == 202 and isinstance(a.data, dict)), None)
        if first is not None:
            self.settle(Placed("duplicates", body, key, first.statuses, first.data["id"], time.time()))

    def scarce_stock_race(self) -> None:
        """More buyers than units of a product, all at once."""
        stock = self.rng.randint(1, 3)
        product = create_product(self.api, self.record, Decimal("5.00"), stock, scenario="scarce_stock_race")
        if product is None:
            return
        if not wait_until_orderable(product, self.orderable, self.stop):
            if not self.stop.is_set():
                self.record.client_errors.append(
                    f"scarce_stock_race: product {product} not orderable within {ORDERABLE_TIMEOUT:.0f} s"
                )
            return

        def buy() -> Placed:
            body = {"customer_id": self.customer(), "items": [{"product_id": product, "quantity": 1}]}
            return self.place("scarce_stock_race", body)

        for placed in together([buy] * (stock + self.rng.randint(2, 4))):
            self.settle(placed)

    def last_funds_race(self) -> None:
        """Orders that together exceed one customer's balance, all at once."""
        customer = create_customer(self.api, self.record, Decimal("40.00"), scenario="last_funds_race")
        if customer is None:
            return

        def buy() -> Placed:
            return self.place("last_funds_race", {"customer_id": customer, "amount": "15.00"})

        for placed in together([buy] * self.rng.randint(3, 5)):
            self.settle(placed)

    def unknown_customer(self) -> None:
        body = {"customer_id": str(uuid.uuid4()), "amount": self.amount()}
        self.settle(self.place("unknown_customer", body, expect="REJECTED/UNKNOWN_CUSTOMER"))

    def declined_payment(self) -> None:
        body = {"customer_id": self.customer(), "amount": f"{self.rng.randint(1, 60)}.66"}
        self.settle(self.place("declined_payment", body, expect="REJECTED/PAYMENT_DECLINED"))

    def blocked_customer(self) -> None:
        body = {"customer_id": self.world.blocked, "amount": self.amount()}
        self.settle(self.place("blocked_customer", body, expect="REJECTED/PAYMENT_DECLINED"))
