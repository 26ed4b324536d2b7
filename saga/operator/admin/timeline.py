"""The timeline of a saga's page: every attempt in the order it was written, the pivot marked where
it was passed, the attempt running now, and the operators' actions between the attempts they came
between."""

import json
from datetime import datetime
from typing import Any

from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from saga.models import OperatorAction, SagaInstance, SagaStep
from saga.operator.display import age, badge, duration, shorten, timestamp
from saga.orchestration.definition import SagaDefinition, Step, StepKind, Wait
from saga.orchestration.participants import REPLIES_KEY
from saga.orchestration.running import Running


def timeline(
    saga: SagaInstance,
    definition: SagaDefinition | None,
    steps: list[SagaStep],
    running: Running | None,
    now: datetime,
) -> list[dict[str, Any]]:
    pivot, waits = _landmarks(definition)
    operators = list(saga.operator_actions.order_by("created_at", "id"))
    replies = saga.data.get(REPLIES_KEY, {})
    rows: list[dict[str, Any]] = []
    for row in steps:
        while operators and operators[0].created_at <= row.started_at:
            rows.append(_operator_row(operators.pop(0)))
        end = row.finished_at
        is_pivot = row.name == pivot and row.kind == SagaStep.Kind.ACTION
        rows.append(
            {
                "kind": "step",
                "time": timestamp(row.started_at),
                "name": row.name,
                "step_kind": row.kind,
                "pivot": is_pivot,
                "attempt": row.attempt,
                "status": badge(row.status),
                "duration": duration(end - row.started_at) if end else f"{age(row.started_at, now)} so far",
                "error": row.error,
                "error_short": shorten(row.error, 90),
                "waited": _waited_for(row, waits, replies),
            }
        )
        if is_pivot and row.status == SagaStep.Status.SUCCEEDED:
            rows.append({"kind": "pivot", "name": pivot})
    if running is not None and not saga.claimed:  # (a claimed attempt has its row above)
        rows.append(_running_row(running, now))
    rows.extend(_operator_row(action) for action in operators)
    return rows


def _landmarks(definition: SagaDefinition | None) -> tuple[str, dict[str, str]]:
    """The definition's pivot step, and the event each of its waits waits for."""
    if definition is None:
        return "", {}
    pivots = [step.name for step in definition.steps if isinstance(step, Step) and step.kind == StepKind.PIVOT]
    waits = {step.name: step.event for step in definition.steps if isinstance(step, Wait)}
    return (pivots[-1] if pivots else ""), waits


def _running_row(running: Running, now: datetime) -> dict[str, Any]:
    """The row of an attempt running in its saga's transaction (nothing of it is written yet)."""
    return {
        "kind": "step",
        "time": timestamp(running.since),
        "name": running.step,
        "step_kind": running.kind,
        "pivot": False,
        "attempt": running.attempt,
        "status": badge(SagaStep.Status.RUNNING),
        "duration": f"{age(running.since, now)} so far",
        "error": "",
        "error_short": "",
        "waited": "",
    }


def _operator_row(action: OperatorAction) -> dict[str, Any]:
    outcome = {"done": "SUCCEEDED", "nothing": "SKIPPED"}.get(action.outcome, "FAILED")
    return {
        "kind": "operator",
        "time": timestamp(action.created_at),
        "action": action,
        "who": action.username or "system",
        "outcome": badge(outcome, action.get_outcome_display()),
    }


def _waited_for(row: SagaStep, waits: dict[str, str], replies: dict[str, Any]) -> SafeString | str:
    """The event a wait received, or the command a step sent to a remote participant and its reply."""
    result = row.result if isinstance(row.result, dict) else {}
    if row.status == SagaStep.Status.SKIPPED:
        return ""
    if row.name in waits:
        event = waits[row.name]
        if row.status == SagaStep.Status.SUCCEEDED:
            return format_html("event <code>{}</code> received {}", event, _compact(result))
        if row.status == SagaStep.Status.RUNNING:
            return format_html("waiting for event <code>{}</code>", event)
        return format_html("event <code>{}</code> (not received)", event)
    if row.status == SagaStep.Status.SENT and "command" in result:
        reply = replies.get(result.get("command_id", ""))
        if reply is None:
            answer = mark_safe('<span class="quiet">no reply yet</span>')
        else:
            answer = format_html(
                "reply {} {}", "✓ succeeded" if reply.get("ok") else "✗ failed", _compact(reply.get("payload"))
            )
        return format_html("sent <code>{}</code> → {}", result["command"], answer)
    return ""


def _compact(value: Any) -> SafeString:
    if not value:
        return mark_safe("")
    text = json.dumps(value, separators=(", ", ": "), default=str)
    return format_html('<code class="quiet" title="{}">{}</code>', text, shorten(text, 80))
