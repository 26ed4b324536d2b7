"""Faults on a schedule drawn from the seed, each recorded with its time and what it did.

A fault may have an end (a frozen broker thawed, a killed process restarted, the faulty worker
stopped), kept on a timeline beside the faults still to come, so faults overlap as they would.
When the run stops the faults, every pending end happens at once.
"""

from __future__ import annotations

import heapq
import json
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

import redis
from django import db
from django.utils import timezone

from orders.models import Order
from tools import procs
from tools.procs import Proc

from .stack import APP_PREFIX, CHECKER, PARTICIPANT_CONTEXTS, Stack, own_service_pid

KINDS = (
    "kill_worker",  # SIGKILL a Celery worker (its whole process group), restart it
    "kill_relay",  # SIGKILL the active relay: the standby takes over; restart it
    "freeze_broker",  # SIGSTOP the broker for tens of seconds, then SIGCONT
    "flush_redis",  # FLUSHALL on the stack's Redis: every queued doorbell lost
    "terminate_db",  # pg_terminate_backend on every connection of the shop
    "kill_web",  # SIGKILL a gunicorn worker (its master starts another)
    "kill_participant",  # SIGKILL the remote payments participant, restart it
    "step_faults",  # a worker whose steps fail (SAGA_FAULTS) or hang past their timeout
    "db_blip",  # pg_terminate_backend on the workers' connections only, several times within a minute
    "freeze_redis",  # SIGSTOP Redis for tens of seconds, then SIGCONT; orders taken meanwhile counted
    "lose_doorbells",  # for 2 s delete every doorbell that reaches the queue (the sagas' markers stay)
    "slow_commit",  # outbox rows of orders in progress held uncommitted for seconds while their sagas go on
)
# The services topology's: the monolith's on orders' processes and database (its participant
# processes are kill_consumer's), and for each participant context (`<kind>:<context>`):
CONTEXT_KINDS = (
    "kill_consumer",  # SIGKILL one of the context's consumers of commands, restart it
    "kill_relay",  # SIGKILL the context's relay, restart it
    "terminate_db",  # pg_terminate_backend on every connection of the shop to the context's database
)
SERVICES_KINDS = (
    *(kind for kind in KINDS if kind != "kill_participant"),
    *(f"{kind}:{context}" for kind in CONTEXT_KINDS for context in PARTICIPANT_CONTEXTS),
)


def kinds(topology: str) -> tuple[str, ...]:
    return SERVICES_KINDS if topology == "services" else KINDS


# What the faulty workers do (SAGA_FAULTS, saga/testing/faults.py). One fails steps with
# transient errors the retry policies absorb: a first attempt, compensations, a retriable step at
# random. The other hangs the pivot past its 30 s timeout (retried without limit, so it ends on a
# healthy worker); a worker of its own, since each hang holds a pool process for 30 s.
STEP_FAULTS = {
    "errors": {
        "reserve_stock": {"fail_attempts": 1},
        "reserve_stock:compensation": {"fail_attempts": 2},
        "hold_funds:compensation": {"fail_attempts": 1},
        "authorize_payment:compensation": {"fail_attempts": 2},
        "capture_payment": {"error_rate": 0.5},
        "consume_funds": {"error_rate": 0.3},
        "commit_stock": {"error_rate": 0.3},
    },
    "hangs": {"confirm_order": {"delay": 31}},
}


# slow_commit: how long its transaction stays open, and how many orders' rows it holds.
SLOW_COMMIT_SECONDS = (3.0, 6.0)
SLOW_COMMIT_ORDERS = 5
# Its rows: one per order (moving ones first) and event topic its saga writes, under the order's
# key, of a type nobody acts on; not the topics the shop consumes (commands, replies, couriers).
# Besides the sagas' own, another transaction commits a row after each at once, so that every
# fault has later rows to overtake the held ones.
SLOW_COMMIT_ROLES = ("order_events", "customer_events", "inventory_events", "saga_events")
_SLOW_COMMIT_ROWS = """
    INSERT INTO saga_outboxmessage (id, topic, aggregate_type, aggregate_id, type, payload, correlation_id, created_at)
    SELECT gen_random_uuid(), topic, 'chaos', aggregate_id, 'chaos.slow_commit',
           jsonb_build_object('order_id', aggregate_id, 'held', %s), id, now()
    FROM held CROSS JOIN unnest(%s::text[]) AS topic
    RETURNING aggregate_id
"""
_HOLD_OUTBOX_ROWS = (
    """
    WITH held AS (
        SELECT id, aggregate_id FROM saga_sagainstance
        WHERE type = 'place_order' AND status IN ('STARTED', 'COMPENSATING', 'WAITING')
        ORDER BY status = 'WAITING', random() LIMIT %s
    )
"""
    + _SLOW_COMMIT_ROWS
)
_FOLLOW_OUTBOX_ROWS = (
    """
    WITH held AS (SELECT id, aggregate_id FROM saga_sagainstance WHERE aggregate_id = ANY(%s::uuid[]))
"""
    + _SLOW_COMMIT_ROWS
)


@dataclass(frozen=True)
class Timing:
    """How long faults last: tens of seconds in a long run, shorter in the short one."""

    freeze: tuple[float, float]
    step_faults: tuple[float, float]
    restart_after: tuple[float, float] = (1.0, 3.0)

    @classmethod
    def for_duration(cls, duration: float) -> Timing:
        if duration >= 300:
            return cls(freeze=(20, 30), step_faults=(30, 45))
        if duration >= 120:
            return cls(freeze=(12, 20), step_faults=(20, 30))
        return cls(freeze=(8, 12), step_faults=(15, 20))


# Mean seconds between two faults of a kind in a long run: each kind several times in 10 minutes
# (a context's fault, kill_relay:inventory, as often as its kind).
PERIOD = {
    "kill_worker": 60,
    "kill_relay": 60,
    "freeze_broker": 90,
    "flush_redis": 60,
    "terminate_db": 60,
    "kill_web": 45,
    "kill_participant": 60,
    "kill_consumer": 60,
    "step_faults": 90,
    "db_blip": 90,
    "freeze_redis": 90,
    "lose_doorbells": 60,
    "slow_commit": 45,
}
DB_BLIPS = (3, 5)  # how many times a db_blip terminates the workers' connections
DB_BLIP_GAP = (2.0, 10.0)  # seconds between two of them

# How long lose_doorbells deletes every doorbell that reaches the queue.
LOSE_DOORBELLS_SECONDS = 2.0

# Faults that freeze a service for a while (Timing.freeze).
FREEZES = ("freeze_broker", "freeze_redis")


def plan(duration: float, rng: random.Random, kinds: tuple[str, ...] = KINDS) -> list[tuple[float, str]]:
    """When each fault starts (seconds into the load). Every kind at least once; in a long run
    every kind `duration / PERIOD` times, each in its own slot of the run, at a random point of it.
    Faults with a length (freeze, step faults) never overlap one of their own kind, and end before
    the load does."""
    timing = Timing.for_duration(duration)
    first, last = min(5.0, duration * 0.1), duration * 0.85
    if duration < 120:
        return _once_each(first, last, timing, rng, kinds)
    planned: list[tuple[float, str]] = []
    for kind in kinds:
        length = {"step_faults": timing.step_faults[1], **dict.fromkeys(FREEZES, timing.freeze[1])}.get(kind, 0.0)
        span = max(last - length - first, 1.0)
        count = max(1, int(span // PERIOD[kind.split(":")[0]]))
        slot = span / count
        planned += [(first + i * slot + rng.uniform(0, slot - min(length, slot * 0.5)), kind) for i in range(count)]
    return sorted(planned)


def _once_each(
    first: float, last: float, timing: Timing, rng: random.Random, kinds: tuple[str, ...]
) -> list[tuple[float, str]]:
    """A short run: each kind once, one after the other in a seeded order, but the faulty worker
    first (it needs sagas moving to fail them), the slow commits second (a frozen broker would
    hold back the later rows they tempt the relay with), and the freezes of the broker and of Redis
    not before the fourth slot (a freeze stops the sagas the faulty worker needs)."""
    others = [k for k in kinds if k not in ("step_faults", "slow_commit", *FREEZES)]
    rng.shuffle(others)
    for freeze in FREEZES:
        others.insert(rng.randint(2, len(others)), freeze)
    order = ["step_faults", "slow_commit", *others]
    slot = (last - first - timing.freeze[1]) / len(order)
    return [(first + i * slot + rng.uniform(0, slot / 2), kind) for i, kind in enumerate(order)]


@dataclass
class Fault:
    kind: str
    at: float  # seconds since the load started
    detail: dict[str, Any] = field(default_factory=dict)
    ended_at: float | None = None
    error: str = ""


class Injector(threading.Thread):
    """Runs the plan against the stack until stopped; `faults` is the record.

    The thread lives until `release()`, after the stack has stopped: the processes it restarts die
    with the thread that started them (tools/procs/process.py, PR_SET_PDEATHSIG), so it must outlive them."""

    def __init__(
        self,
        stack: Stack,
        planned: list[tuple[float, str]],
        *,
        timing: Timing,
        rng: random.Random,
        redis_url: str,
        t0: float,
    ):
        super().__init__(name="faults", daemon=True)
        self.stack, self.timing, self.rng, self.redis_url, self.t0 = stack, timing, rng, redis_url, t0
        self.faults: list[Fault] = []
        self.stopping = threading.Event()
        self.ended = threading.Event()  # every pending end has happened
        self.released = threading.Event()
        self.lock = threading.Lock()  # the timeline, shared with stop()
        self._timeline: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self._background: list[threading.Thread] = []
        for at, kind in planned:
            self._at(at, partial(self._inject, kind))

    def now(self) -> float:
        return time.monotonic() - self.t0

    def _at(self, at: float, action: Callable[[], None]) -> None:
        with self.lock:
            self._seq += 1
            heapq.heappush(self._timeline, (at, self._seq, action))

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                with self.lock:
                    due = self._timeline[0][0] if self._timeline else None
                if due is None or due > self.now():
                    self.stopping.wait(min(due - self.now(), 0.5) if due is not None else 0.5)
                    continue
                with self.lock:
                    _, _, action = heapq.heappop(self._timeline)
                action()
            with self.lock:
                pending = [action for _, _, action in sorted(self._timeline)]
                self._timeline = []
            for action in pending:
                if getattr(action, "is_end", False):
                    action()
            for thread in self._background:
                thread.join(timeout=60)
        finally:
            self.ended.set()
            self.released.wait()

    def stop(self) -> None:
        """No more faults; every pending end (thaw, restart) happens now, in order."""
        self.stopping.set()
        self.ended.wait()

    def release(self) -> None:
        """After the stack has stopped: the thread may end."""
        self.stopping.set()
        self.released.set()
        if self.is_alive():
            self.join()

    # --- the faults ----------------------------------------------------------------------------

    def _inject(self, kind: str) -> None:
        fault = Fault(kind=kind, at=round(self.now(), 2))
        self.faults.append(fault)
        name, _, context = kind.partition(":")  # a context's fault: kill_relay:inventory
        try:
            getattr(self, name)(fault, *([context] if context else []))
        except Exception as error:  # noqa: BLE001 - a fault that could not be injected is recorded, the run goes on
            fault.error = f"{type(error).__name__}: {error}"

    def _end(self, fault: Fault, after: float, action: Callable[[], None]) -> None:
        def end() -> None:
            try:
                action()
            except Exception as error:  # noqa: BLE001 - recorded with the fault
                fault.error = f"ending it: {type(error).__name__}: {error}"
            fault.ended_at = round(self.now(), 2)

        end.is_end = True  # type: ignore[attr-defined]  # stop() runs ends, not faults still to come
        self._at(self.now() + after, end)

    def _restart_later(self, fault: Fault, process: Proc) -> None:
        after = self.rng.uniform(*self.timing.restart_after)
        fault.detail["restarted_after_s"] = round(after, 2)
        self._end(fault, after, process.start)

    def kill_worker(self, fault: Fault) -> None:
        worker = self.rng.choice(self.stack.workers)
        fault.detail["process"] = worker.name
        worker.kill()
        self._restart_later(fault, worker)

    def kill_relay(self, fault: Fault, context: str = "orders") -> None:
        """The active relay of `context`'s database, and the standby must take over (orders'); a
        context's only relay whether it holds the lock or is taking it again (after terminate_db)."""
        relays = self.stack.relays[context]
        if len(relays) == 1:
            return self._kill_only_relay(fault, relays[0])
        active = self.stack.active_relay(context)
        if active is None:
            fault.error = f"no relay of {context} was active"
            return
        standby = [r for r in self.stack.relays[context] if r is not active]
        if not all(r.running() for r in standby):
            fault.error = "skipped: the standby is not running"
            return
        fault.detail["process"] = active.name
        killed = time.monotonic()
        active.kill()
        self._await_takeover(fault, context, active, killed)
        self._restart_later(fault, active)

    def _kill_only_relay(self, fault: Fault, relay: Proc) -> None:
        if not relay.running():
            fault.error = f"skipped: {relay.name} is not running (killed, not yet restarted)"
            return
        fault.detail["process"] = relay.name
        relay.kill()
        self._restart_later(fault, relay)

    def _await_takeover(self, fault: Fault, context: str, killed_relay: Proc, killed: float) -> None:
        deadline = killed + 30
        while time.monotonic() < deadline:
            taker = self.stack.active_relay(context)
            if taker is not None and taker is not killed_relay:
                fault.detail["takeover_s"] = round(time.monotonic() - killed, 3)
                fault.detail["taken_over_by"] = taker.name
                return
            time.sleep(0.02)
        fault.error = "the standby did not take over within 30 s"

    def freeze_broker(self, fault: Fault) -> None:
        address = self.stack.relays["orders"][0].env["KAFKA_BOOTSTRAP_SERVERS"].split(",")[0]
        pid = own_service_pid(address)
        if pid is None:
            fault.error = f"skipped: the broker at {address} was not started by this run's launcher"
            return
        seconds = self.rng.uniform(*self.timing.freeze)
        fault.detail.update(pid=pid, seconds=round(seconds, 1))
        os.kill(pid, signal.SIGSTOP)
        self._end(fault, seconds, lambda: os.kill(pid, signal.SIGCONT))

    def _own_redis(self, fault: Fault) -> int | None:
        """The pid of the run's Redis, if this run's launcher started it (else the fault is skipped)."""
        address = self.redis_url.split("//", 1)[-1].split("/", 1)[0].rsplit("@", 1)[-1]
        pid = own_service_pid(address)
        if pid is None:
            fault.error = f"skipped: the Redis at {address} was not started by this run's launcher"
        return pid

    def _on_redis(self, fault: Fault, work: Callable[[redis.Redis], None]) -> None:
        """Run `work` against the run's Redis away from the injector's thread: Redis may be frozen
        (freeze_redis), and this thread is the one that thaws it; the work waits the freeze out."""
        if self._own_redis(fault) is None:
            return

        def run() -> None:
            client = redis.Redis.from_url(self.redis_url, socket_timeout=60)  # longer than any freeze
            try:
                work(client)
            except Exception as error:  # noqa: BLE001 - recorded with the fault
                fault.error = f"{type(error).__name__}: {error}"
            finally:
                client.close()

        thread = threading.Thread(target=run, name=fault.kind, daemon=True)
        thread.start()
        self._background.append(thread)

    def flush_redis(self, fault: Fault) -> None:
        def flush(client: redis.Redis) -> None:
            fault.detail["keys_before"] = client.dbsize()
            client.flushall()

        self._on_redis(fault, flush)

    def terminate_db(self, fault: Fault, context: str = "orders") -> None:
        """Every connection of the shop to `context`'s database (the monolith's one: orders')."""
        terminated = self._terminate(f"{APP_PREFIX}%", context)
        fault.detail["connections"] = len(terminated)
        fault.detail["of"] = sorted({name.removeprefix(APP_PREFIX) for name in terminated})

    def db_blip(self, fault: Fault) -> None:
        """The workers' connections only, a few times in a row (a flapping failover): a step
        whose connection drops is run again, never counted as its worker's crash."""
        blips = self.rng.randint(*DB_BLIPS)
        fault.detail.update(blips=blips, connections=[])

        def blip(left: int) -> None:
            fault.detail["connections"].append(len(self._terminate(f"{APP_PREFIX}worker%")))
            if left > 1:
                self._end(fault, self.rng.uniform(*DB_BLIP_GAP), partial(blip, left - 1))

        blip(blips)

    def _terminate(self, application_names: str, context: str = "orders") -> list[str]:
        """pg_terminate_backend on the shop's connections to `context`'s database whose
        application_name is LIKE the pattern."""
        conn = procs.connect(procs.with_application_name(self.stack.databases[context], CHECKER))
        try:
            with conn.cursor() as cursor:
                cursor.execute(
                    "SELECT application_name, pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND application_name LIKE %s AND pid <> pg_backend_pid()",
                    [application_names],
                )
                return [name for name, done in cursor.fetchall() if done]
        finally:
            conn.close()

    def kill_web(self, fault: Fault) -> None:
        workers = self.stack.web_workers()
        if not workers:
            fault.error = "no gunicorn worker found"
            return
        pid = self.rng.choice(workers)
        fault.detail["pid"] = pid
        os.kill(pid, signal.SIGKILL)

    def kill_participant(self, fault: Fault) -> None:
        """The monolith's remote participant, payments."""
        self.kill_consumer(fault, "payments")

    def kill_consumer(self, fault: Fault, context: str) -> None:
        """One of the consumers of `context`'s commands (the others take its partitions meanwhile)."""
        running = [c for c in self.stack.participants[context] if c.running()]
        if not running:
            fault.error = f"skipped: no consumer of {context} is running (killed, not yet restarted)"
            return
        consumer = self.rng.choice(running)
        fault.detail["process"] = consumer.name
        consumer.kill()
        self._restart_later(fault, consumer)

    def step_faults(self, fault: Fault) -> None:
        seconds = self.rng.uniform(*self.timing.step_faults)
        faulty = [self.stack.start_faulty_worker(what, json.dumps(spec)) for what, spec in STEP_FAULTS.items()]
        fault.detail.update(processes=[w.name for w in faulty], seconds=round(seconds, 1))

        def stop_in_background() -> None:
            # A warm shutdown lets a hanging step reach its timeout; the run goes on meanwhile.
            for worker in faulty:
                thread = threading.Thread(target=worker.stop, kwargs={"timeout": 45}, daemon=True)
                thread.start()
                self._background.append(thread)

        self._end(fault, seconds, stop_in_background)

    def freeze_redis(self, fault: Fault) -> None:
        """Redis stops answering (a stalled failover, a paused host): orders must still be taken.
        The orders placed while it is frozen are counted, beside those of as long a time before."""
        pid = self._own_redis(fault)
        if pid is None:
            return
        seconds = self.rng.uniform(*self.timing.freeze)
        fault.detail.update(pid=pid, seconds=round(seconds, 1), orders_before=self._orders_placed_in_last(seconds))
        os.kill(pid, signal.SIGSTOP)

        def thaw() -> None:
            os.kill(pid, signal.SIGCONT)
            fault.detail["orders_during"] = self._orders_placed_in_last(seconds)

        self._end(fault, seconds, thaw)

    @staticmethod
    def _orders_placed_in_last(seconds: float) -> int:
        try:
            return Order.objects.filter(created_at__gt=timezone.now() - timedelta(seconds=seconds)).count()
        finally:
            db.connection.close()  # the injector's thread's own

    def lose_doorbells(self, fault: Fault) -> None:
        """For a few seconds every doorbell that reaches the queue vanishes, while the sagas' markers
        stay and new doorbells keep coming after it: the sweeper must ring the sagas whose doorbells
        were lost however busy the queue is afterwards."""
        queue = self.stack.workers[0].env["SHOP_CELERY_QUEUE"]  # the doorbells' queue (the beat's is apart)
        seconds = LOSE_DOORBELLS_SECONDS

        def lose(client: redis.Redis) -> None:
            lost, until = 0, time.monotonic() + seconds
            while time.monotonic() < until:
                pipe = client.pipeline(transaction=True)  # what was counted is what is deleted
                pipe.llen(queue)
                pipe.delete(queue)
                waiting, _ = pipe.execute()
                lost += waiting
                time.sleep(0.02)
            fault.detail.update(doorbells_lost=lost, seconds=seconds)

        self._on_redis(fault, lose)

    def slow_commit(self, fault: Fault) -> None:
        """A transaction takes outbox positions for orders in progress and commits seconds later,
        after their sagas committed later rows of the same keys: the relay must send them first."""
        env, database_url = self.stack.relays["orders"][0].env, self.stack.databases["orders"]
        topics = [env.get(f"KAFKA_TOPIC_{role.upper()}", role) for role in SLOW_COMMIT_ROLES]
        conn = procs.connect(procs.with_application_name(database_url, CHECKER))
        conn.autocommit = False
        try:
            with conn.cursor() as cursor:
                cursor.execute(_HOLD_OUTBOX_ROWS, [SLOW_COMMIT_ORDERS, True, topics])
                held = sorted({order for (order,) in cursor.fetchall()})
            if held:
                _commit_rows_after(database_url, held, topics)
        except Exception:
            conn.close()
            raise
        if not held:
            conn.close()
            fault.error = "skipped: no order in progress"
            return
        seconds = self.rng.uniform(*SLOW_COMMIT_SECONDS)
        fault.detail.update(orders=held, seconds=round(seconds, 1))
        self._end(fault, seconds, partial(_commit_and_close, conn))


def _commit_rows_after(database_url: str, orders: list[str], topics: list[str]) -> None:
    conn = procs.connect(procs.with_application_name(database_url, CHECKER))
    try:
        with conn.cursor() as cursor:
            cursor.execute(_FOLLOW_OUTBOX_ROWS, [orders, False, topics])
    finally:
        conn.close()


def _commit_and_close(conn: Any) -> None:
    try:
        conn.commit()
    finally:
        conn.close()
