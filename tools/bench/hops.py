"""Where a saga's time goes in the services topology: sagas run one at a time (nothing queued
behind another), then each remote step's round trip cut at the timestamps the four databases
keep: the command's outbox row in orders (created, sent), the participant's inbox row (received),
its reply's outbox row (created, sent), orders' inbox row of the reply (received), and the next
command (or the saga's end). No Django: the rows are read over plain connections."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from tools.procs import connect

# The segments of one remote step, in order, each from one timestamp to the next. A saga's time is
# the start to its first command ("to_first_command": the placing's doorbell, the first step's
# transaction) and then its remote steps' segments end to end: the last ends with the saga.
SEGMENTS = (
    ("orders_relay", "the step's commit and orders' relay (command created -> sent)"),
    ("to_participant", "Kafka to the participant (sent -> its inbox)"),
    ("participant", "the participant's transaction (inbox -> reply created)"),
    ("participant_relay", "the participant's relay (reply created -> sent)"),
    ("to_orders", "Kafka back to orders (reply sent -> orders' inbox)"),
    ("orders_next", "doorbell, the step again, the next step (-> next command or end)"),
)
Row = tuple[Any, ...]


def breakdown(urls: Mapping[str, str], saga_ids: list[str]) -> dict[str, float]:
    """Mean milliseconds of each segment per remote step over the sagas, and the remote steps per
    saga (`remote_steps`). `urls`: each context's database, orders' under "orders"."""
    commands = _query(
        urls["orders"],
        "SELECT id::text, causation_id::text, correlation_id::text, created_at, sent_at FROM saga_outboxmessage "
        "WHERE correlation_id = ANY(%s::uuid[]) AND payload ? 'command_id' ORDER BY position",
        [saga_ids],
    )
    ids = [command[0] for command in commands]
    received: dict[str, datetime] = {}
    replies: dict[str, Row] = {}  # by command id (the reply's causation)
    for context, url in urls.items():
        if context == "orders":
            continue
        inbox = _query(url, "SELECT id::text, received_at FROM saga_inboxmessage WHERE id = ANY(%s::uuid[])", [ids])
        received.update(dict(inbox))
        for reply in _query(
            url,
            "SELECT causation_id::text, id::text, created_at, sent_at FROM saga_outboxmessage "
            "WHERE correlation_id = ANY(%s::uuid[]) AND (type LIKE '%%.succeeded' OR type LIKE '%%.failed')",
            [saga_ids],
        ):
            replies[reply[0]] = reply
    back: dict[str, datetime] = dict(
        _query(
            urls["orders"],
            "SELECT id::text, received_at FROM saga_inboxmessage WHERE id = ANY(%s::uuid[])",
            [[reply[1] for reply in replies.values()]],
        )
    )
    sagas = _query(
        urls["orders"],
        "SELECT id::text, created_at, updated_at FROM saga_sagainstance WHERE id = ANY(%s::uuid[])",
        [saga_ids],
    )
    starts, ends = {saga[0]: saga[1] for saga in sagas}, {saga[0]: saga[2] for saga in sagas}
    by_saga: dict[str, list[Row]] = defaultdict(list)
    for command in commands:
        by_saga[command[2]].append(command)
    spans: dict[str, list[float]] = defaultdict(list)
    for saga_id, saga_commands in by_saga.items():
        spans["to_first_command"].append((saga_commands[0][3] - starts[saga_id]).total_seconds() * 1000)
        nexts = [later[3] for later in saga_commands[1:]] + [ends[saga_id]]
        for (command_id, cause, _saga, created, sent), next_at in zip(saga_commands, nexts, strict=True):
            _, reply_id, reply_created, reply_sent = replies[cause]
            stamps = (created, sent, received[command_id], reply_created, reply_sent, back[reply_id], next_at)
            for (name, _label), start, end in zip(SEGMENTS, stamps, stamps[1:], strict=False):
                spans[name].append((end - start).total_seconds() * 1000)
    means = {name: statistics.fmean(spans[name]) for name in spans}
    return {**means, "remote_steps": len(commands) / len(saga_ids)}


def _query(url: str, sql: str, params: list[Any]) -> list[Row]:
    conn = connect(url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())
    finally:
        conn.close()
