"""The page of one saga: its facts, its definition's diagram, the timeline, the messages it sent
and received, its data, and the operator actions its state allows."""

from datetime import datetime
from typing import Any

from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from saga.models import Direction, InboxMessage, OutboxMessage, SagaInstance
from saga.operator import diagram as definition_diagram
from saga.operator.admin.saga_actions import ACTIONS, definition_for, why_not
from saga.operator.admin.timeline import timeline
from saga.operator.display import age, badge, duration, timestamp
from saga.operator.links import aggregate_link, related_links
from saga.orchestration.running import Running
from saga.selectors import saga_is_stuck, saga_running


class SagaPage:
    """What the saga's page shows: facts, diagram, timeline, messages, data, actions."""

    def __init__(self, saga: SagaInstance, can_operate: bool) -> None:
        self.saga = saga
        self.can_operate = can_operate
        self.definition = definition_for(saga)
        self.steps = list(saga.steps.order_by("id"))
        self.now = timezone.now()
        self.running = saga_running(saga=saga, now=self.now)

    def context(self) -> dict[str, Any]:
        saga = self.saga
        return {
            "saga": saga,
            "status": self.status(),
            "facts": self.facts(),
            "diagram": self.diagram(),
            "timeline": timeline(saga, self.definition, self.steps, self.running, self.now),
            "outbox": self.outbox(),
            "inbox": self.inbox(),
            "data": data_table({k: v for k, v in saga.data.items() if not k.startswith("_")}),
            "engine_data": data_table({k: v for k, v in saga.data.items() if k.startswith("_")}),
            "buttons": self.buttons() if self.can_operate else [],
            "can_operate": self.can_operate,
        }

    def status(self) -> SafeString:
        return saga_badge(self.saga)

    def facts(self) -> list[tuple[str, Any]]:
        return [*self.identity(), *self.position(), *self.times(), *self.alarms()]

    def identity(self) -> list[tuple[str, Any]]:
        """What the saga is and what it is about, with links to the project's pages of those."""
        saga = self.saga
        link = aggregate_link(saga)
        aggregate = format_html("<code>{}</code>", saga.aggregate_id)
        if link:
            aggregate = format_html('<a href="{}">{} <code>{}</code></a>', link[1], link[0], saga.aggregate_id)
        return [
            ("saga id", format_html("<code>{}</code>", saga.id)),
            ("type", f"{saga.type} v{saga.version}"),
            ("aggregate", aggregate),
            *((label, format_html('<a href="{}">{}</a>', url, text)) for label, text, url in related_links(saga)),
        ]

    def position(self) -> list[tuple[str, Any]]:
        """Where the saga is: its step, which way it goes, why it stopped."""
        saga = self.saga
        direction = "rolling back ↩" if saga.direction == Direction.BACKWARD else "forward"
        current = self.running.step if self.running else saga.current_step or "—"
        facts: list[tuple[str, Any]] = [
            ("current step", format_html("<strong>{}</strong> ({})", current, direction)),
            ("attempts at it", saga.attempts),
            ("reason", saga.reason or "—"),
        ]
        if saga.error:
            facts.append(("last error", format_html('<pre class="saga-pre">{}</pre>', saga.error)))
        return facts

    def times(self) -> list[tuple[str, Any]]:
        saga = self.saga
        facts: list[tuple[str, Any]] = [
            ("started", self.moment(saga.created_at)),
            ("last moved", self.moment(saga.updated_at)),
        ]
        for label, moment in (("backoff until", saga.retry_at), ("timer", saga.timer_at), ("deadline", saga.deadline)):
            if moment is not None:
                facts.append((label, timestamp(moment)))
        if saga.resolved_at is not None:
            facts.append(("resolved", timestamp(saga.resolved_at)))
        return facts

    def alarms(self) -> list[tuple[str, Any]]:
        """The attempt running now, whether the saga is stuck, and the request that started it."""
        facts: list[tuple[str, Any]] = []
        if self.running is not None:
            facts.append(("running", _running_fact(self.running, self.now)))
        if saga_is_stuck(self.saga, self.now, running=self.running):
            facts.append(("stuck", format_html('<span class="saga-stuck">⚠ {}</span>', self.why_stuck())))
        facts.append(("request id", format_html("<code>{}</code>", self.saga.correlation_id)))
        return facts

    def moment(self, moment: datetime) -> SafeString:
        return format_html("{} <span class='quiet'>({} ago)</span>", timestamp(moment), age(moment, self.now))

    def why_stuck(self) -> str:
        if self.running is None:
            return "should have moved by now"
        return f"running past its timeout ({duration(self.running.timeout)})"

    def diagram(self) -> SafeString:
        if self.definition is None:
            return definition_diagram.unavailable(self.saga, "no definition of this version")
        return definition_diagram.render(self.definition, self.saga, self.steps)

    def outbox(self) -> list[OutboxMessage]:
        mine = Q(correlation_id=self.saga.id) | Q(aggregate_id=str(self.saga.aggregate_id))
        return list(OutboxMessage.objects.filter(mine).order_by("position")[:200])

    def inbox(self) -> list[InboxMessage]:
        mine = Q(correlation_id=self.saga.id) | Q(key=str(self.saga.aggregate_id))
        return list(InboxMessage.objects.filter(mine).order_by("received_at")[:200])

    def buttons(self) -> list[dict[str, Any]]:
        return [
            {
                "action": action,
                "label": about["label"],
                "url": reverse("admin:saga_sagainstance_operate", args=[self.saga.pk, action]),
                "refused": why_not(action, self.saga),
            }
            for action, about in ACTIONS.items()
        ]


def saga_badge(saga: SagaInstance) -> SafeString:
    """The saga's status; a FAILED saga an operator resolved, muted."""
    if saga.resolved_at is not None:
        return badge(saga.status, "FAILED · resolved", muted=True)
    return badge(saga.status)


def _running_fact(running: Running, now: datetime) -> SafeString:
    return format_html(
        "<strong>{}</strong> ({}) running attempt {} since {} <span class='quiet'>({} so far)</span>",
        running.step,
        running.kind,
        running.attempt,
        timestamp(running.since),
        age(running.since, now),
    )


def data_table(data: Any) -> SafeString:
    """A saga's data as nested tables: keys on the left, lists of objects as tables of their own."""
    if isinstance(data, dict):
        if not data:
            return mark_safe('<span class="quiet">(empty)</span>')
        rows = format_html_join(
            "", "<tr><th>{}</th><td>{}</td></tr>", ((key, data_table(value)) for key, value in data.items())
        )
        return format_html('<table class="saga-data">{}</table>', rows)
    if isinstance(data, list):
        return _list_table(data)
    if data is None:
        return mark_safe('<span class="quiet">null</span>')
    if isinstance(data, bool):
        return format_html("{}", "yes" if data else "no")
    return format_html("{}", data)


def _list_table(data: list[Any]) -> SafeString:
    """A list of objects as a table, one column per key; any other list inline."""
    if data and all(isinstance(item, dict) for item in data):
        columns = list(dict.fromkeys(key for item in data for key in item))
        head = format_html_join("", "<th>{}</th>", ((column,) for column in columns))
        body = format_html_join(
            "",
            "<tr>{}</tr>",
            (
                (format_html_join("", "<td>{}</td>", ((data_table(item.get(c, "")),) for c in columns)),)
                for item in data
            ),
        )
        return format_html('<table class="saga-data saga-data-list"><tr>{}</tr>{}</table>', head, body)
    if not data:
        return mark_safe('<span class="quiet">(none)</span>')
    return format_html_join(", ", "{}", ((data_table(item),) for item in data))
