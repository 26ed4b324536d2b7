"""The diagram of a saga's definition, drawn on the server as SVG: no script, no CDN.

Steps are boxes in order, left to right, with their compensations beneath; the pivot is marked
and followed by the point of no return; the step the saga is at is highlighted; each box is
colored by what happened to it in this saga (done, failed, compensated, running, skipped).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from textwrap import wrap

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from saga.models import ACTIVE, Direction, SagaInstance, SagaStatus, SagaStep
from saga.orchestration.definition import SagaDefinition, Step, StepKind, Wait

BOX_W, BOX_H, GAP, MARGIN, TOP, COMP_Y = 150, 62, 40, 16, 40, 150

# state -> (fill, stroke, label)
STATES = {
    "done": ("#e6f4ea", "#1e6b34", "done"),
    "failed": ("#fce8e6", "#b3261e", "failed"),
    "compensated": ("#fff4e0", "#8a5300", "compensated"),
    "running": ("#e8f0fe", "#1a5fa8", "running"),
    "waiting": ("#efe9fb", "#5b3fa8", "waiting"),
    "skipped": ("#f1f3f4", "#9aa0a6", "skipped"),
    "refused": ("#fff4e0", "#8a5300", "refused"),
    "pending": ("#ffffff", "#9aa0a6", "not run"),
}


@dataclass(frozen=True)
class BoxState:
    state: str
    attempts: int


def step_states(steps: Iterable[SagaStep]) -> tuple[dict[str, BoxState], dict[str, BoxState]]:
    """What happened to each step's action and compensation: (by name, by name)."""
    actions: dict[str, list[str]] = {}
    compensations: dict[str, list[str]] = {}
    for row in steps:
        target = actions if row.kind == SagaStep.Kind.ACTION else compensations
        target.setdefault(row.name, []).append(row.status)
    return (
        {name: BoxState(_state(rows, compensation=False), len(rows)) for name, rows in actions.items()},
        {name: BoxState(_state(rows, compensation=True), len(rows)) for name, rows in compensations.items()},
    )


def _state(statuses: list[str], *, compensation: bool) -> str:
    last = statuses[-1]
    if last == SagaStep.Status.SUCCEEDED:
        return "compensated" if compensation else "done"
    if last == SagaStep.Status.SKIPPED:
        return "skipped"
    if last == SagaStep.Status.REFUSED:
        return "refused"
    if last in (SagaStep.Status.RUNNING, SagaStep.Status.SENT):
        return "running"
    if last == SagaStep.Status.ABANDONED:
        return "pending" if len(statuses) == 1 else _state(statuses[:-1], compensation=compensation)
    return "failed"


def render(definition: SagaDefinition, saga: SagaInstance, steps: Iterable[SagaStep]) -> SafeString:
    actions, compensations = step_states(steps)
    current = saga.current_step if (saga.status in ACTIVE or saga.status == SagaStatus.FAILED) else ""
    backward = saga.direction == Direction.BACKWARD
    count = len(definition.steps)
    width = MARGIN * 2 + count * BOX_W + (count - 1) * GAP
    height = COMP_Y + BOX_H + 46
    parts: list[str] = [_defs()]
    pivot_x = None
    for index, step in enumerate(definition.steps):
        x = MARGIN + index * (BOX_W + GAP)
        state = actions.get(step.name, BoxState("pending", 0))
        if isinstance(step, Wait) and state.state == "running":
            state = BoxState("waiting", state.attempts)
        is_current = step.name == current and not (backward and _compensable(step))
        parts.append(_box(x, TOP, step.name, _kind_label(step), state, is_current, wait=isinstance(step, Wait)))
        if index + 1 < count:
            parts.append(_arrow(x + BOX_W + 2, TOP + BOX_H / 2, x + BOX_W + GAP - 4, TOP + BOX_H / 2, "#5f6368"))
        if isinstance(step, Step) and step.kind == StepKind.PIVOT:
            pivot_x = x + BOX_W + GAP / 2
            parts.append(
                format_html(
                    '<text x="{}" y="{}" class="pivot-mark" text-anchor="middle">★ pivot</text>', x + BOX_W / 2, TOP - 8
                )
            )
        if _compensable(step):
            assert isinstance(step, Step)  # _compensable says so
            comp = compensations.get(step.name, BoxState("pending", 0))
            comp_current = step.name == current and backward
            name = getattr(step.compensation, "__name__", "compensation")
            parts.append(_link(x + BOX_W / 2, TOP + BOX_H, x + BOX_W / 2, COMP_Y))
            parts.append(_box(x, COMP_Y, name, "compensation", comp, comp_current, wait=False))
    parts.append(_backward_arrows(definition))
    if pivot_x is not None:
        parts.append(
            format_html(
                '<line x1="{0}" y1="{1}" x2="{0}" y2="{2}" class="no-return"/>'
                '<text x="{3}" y="{4}" class="no-return-label">point of no return →</text>',
                pivot_x,
                TOP - 26,
                height - 20,
                pivot_x + 6,
                height - 8,
            )
        )
    parts.append(_legend(height - 8))
    title = f"{definition.name} v{definition.version}"
    return format_html(
        '<svg xmlns="http://www.w3.org/2000/svg" class="saga-diagram" viewBox="0 0 {} {}" role="img" '
        'aria-label="{}"><title>{}</title>{}</svg>',
        width,
        height,
        f"Diagram of {title}",
        title,
        mark_safe("".join(parts)),  # every part is built with format_html
    )


def _compensable(step: Step | Wait) -> bool:
    return isinstance(step, Step) and step.compensation is not None


def _kind_label(step: Step | Wait) -> str:
    if isinstance(step, Wait):
        return f"waits for {step.event}"
    return {StepKind.PIVOT: "pivot", StepKind.RETRIABLE: "retried until done"}.get(step.kind, "compensatable")


def _box(x: float, y: float, name: str, kind: str, state: BoxState, current: bool, *, wait: bool) -> str:
    fill, stroke, label = STATES[state.state]
    lines = wrap(name.replace("_", " "), 19)[:3]
    first = y + BOX_H / 2 - (len(lines) - 1) * 7 - 4
    text = "".join(
        format_html('<tspan x="{}" y="{}">{}</tspan>', x + BOX_W / 2, first + i * 14, line)
        for i, line in enumerate(lines)
    )
    attempts = f" \u00d7{state.attempts}" if state.attempts > 1 else ""
    classes = "box current" if current else "box"
    rect = format_html(
        '<rect x="{}" y="{}" width="{}" height="{}" rx="{}" fill="{}" stroke="{}" class="{}"{}/>',
        x,
        y,
        BOX_W,
        BOX_H,
        22 if wait else 6,
        fill,
        stroke,
        classes,
        mark_safe(' stroke-dasharray="5 3"') if state.state in ("skipped", "pending") else "",
    )
    marker = (
        format_html('<text x="{}" y="{}" class="current-label" text-anchor="end">▶ current</text>', x + BOX_W, y - 6)
        if current
        else ""
    )
    return format_html(
        '<g class="step state-{}" data-step="{}">{}{}<text class="name" text-anchor="middle">{}</text>'
        '<text x="{}" y="{}" class="kind" text-anchor="middle">{}</text>'
        '<text x="{}" y="{}" class="state" text-anchor="middle" fill="{}">{}{}</text></g>',
        state.state,
        name,
        rect,
        marker,
        mark_safe(text),  # built with format_html above
        x + BOX_W / 2,
        y + BOX_H + 13,
        kind,
        x + BOX_W / 2,
        y + BOX_H - 6,
        stroke,
        label,
        attempts,
    )


def _arrow(x1: float, y1: float, x2: float, y2: float, color: str) -> str:
    return format_html(
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}" stroke-width="1.5" marker-end="url(#arrow)"/>',
        x1,
        y1,
        x2,
        y2,
        color,
    )


def _link(x1: float, y1: float, x2: float, y2: float) -> str:
    return format_html(
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#9aa0a6" stroke-dasharray="3 3"/>', x1, y1 + 16, x2, y2
    )


def _backward_arrows(definition: SagaDefinition) -> str:
    """Compensations run right to left: an arrow from each to the one before it."""
    indexes = [i for i, step in enumerate(definition.steps) if _compensable(step)]
    arrows = []
    for later, earlier in zip(indexes[1:], indexes[:-1], strict=False):
        x1 = MARGIN + later * (BOX_W + GAP) - 2
        x2 = MARGIN + earlier * (BOX_W + GAP) + BOX_W + 4
        arrows.append(_arrow(x1, COMP_Y + BOX_H / 2, x2, COMP_Y + BOX_H / 2, "#8a5300"))
    return "".join(arrows)


def _legend(y: float) -> str:
    items = []
    x = MARGIN
    for state in ("done", "running", "failed", "compensated", "pending"):
        fill, stroke, label = STATES[state]
        items.append(
            format_html(
                '<rect x="{}" y="{}" width="12" height="12" rx="2" fill="{}" stroke="{}"/>'
                '<text x="{}" y="{}" class="legend">{}</text>',
                x,
                y - 10,
                fill,
                stroke,
                x + 16,
                y,
                label,
            )
        )
        x += 28 + len(label) * 7
    return "".join(items)


def _defs() -> str:
    return (
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" '
        'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="context-stroke"/></marker></defs>'
        "<style>"
        ".saga-diagram text{font-family:-apple-system,'Segoe UI',Roboto,sans-serif;font-size:12px;fill:#202124}"
        ".saga-diagram .name{font-weight:600;font-size:12.5px}"
        ".saga-diagram .kind{font-size:10.5px;fill:#5f6368}"
        ".saga-diagram .state{font-size:10.5px;font-weight:600}"
        ".saga-diagram .box{stroke-width:1.6}"
        ".saga-diagram .box.current{stroke-width:3.5;filter:drop-shadow(0 0 4px rgba(26,95,168,.55))}"
        ".saga-diagram .current-label{font-size:11px;font-weight:700;fill:#1a5fa8}"
        ".saga-diagram .pivot-mark{font-size:11px;font-weight:700;fill:#b3261e}"
        ".saga-diagram .no-return{stroke:#b3261e;stroke-width:1.2;stroke-dasharray:6 4}"
        ".saga-diagram .no-return-label{font-size:10.5px;fill:#b3261e}"
        ".saga-diagram .legend{font-size:10.5px;fill:#5f6368}"
        "</style>"
    )


def unavailable(saga: SagaInstance, reason: str) -> SafeString:
    return format_html(
        '<p class="saga-diagram-missing">No diagram: {} v{} is not registered in this process ({}).</p>',
        saga.type,
        saga.version,
        escape(reason),
    )
