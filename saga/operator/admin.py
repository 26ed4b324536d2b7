"""The engine's admin: every saga with its timeline and diagram, the operator actions (retry,
compensate, rewind, resolve; replay or discard a dead letter), the outbox, the inbox and the
audit trail, and a dashboard on the admin index.

Nothing here is edited by hand: a saga, a message or an audit row is shown, and changes only
through the operator actions, which go through `saga.services` (permission, audit, idempotency).
Operating needs `saga.change_sagainstance` (sagas) or `saga.change_deadletter` (dead letters); a
staff user with only the view permission sees everything and no action button.
"""

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from saga import services
from saga.core.conf import saga_settings
from saga.messaging.relay import outbox_lag_seconds
from saga.models import (
    ACTIVE,
    DeadLetter,
    Direction,
    InboxMessage,
    OperatorAction,
    OutboxMessage,
    ProcessedCommand,
    SagaInstance,
    SagaStatus,
    SagaStep,
)
from saga.operator import diagram as admin_diagram
from saga.operator.display import LedgerAdmin, age, badge, breakable, duration, ms_field, short_id, shorten, timestamp
from saga.operator.links import aggregate_link, related_links, search_keys
from saga.orchestration.definition import DefinitionError, SagaDefinition, Step, StepKind, Wait
from saga.orchestration.participants import REPLIES_KEY
from saga.orchestration.registry import definitions
from saga.orchestration.running import Running
from saga.selectors import saga_is_stuck, saga_needs_operator_q, saga_retrying_long_q, saga_running, saga_stuck_q

# The admin index shows the engine's dashboard, unless the project has an index of its own.
if admin.site.index_template is None:
    admin.site.index_template = "admin/saga_index.html"

ACTIONS: dict[str, dict[str, str]] = {
    "retry": {
        "label": "Retry",
        "verb": "retry",
        "explain": "Resume the saga where it stopped, with a fresh allowance of attempts for the step it is at "
        "(a saga still moving is only nudged). Participants are idempotent: nothing that happened happens twice.",
    },
    "compensate": {
        "label": "Compensate",
        "verb": "compensate",
        "explain": "Roll the saga back: undo every step done so far, in reverse order. Only before its pivot.",
    },
    "rewind": {
        "label": "Rewind",
        "verb": "rewind",
        "explain": "Run the saga forward again from the step you choose (as replay_saga --from-step). Steps "
        "that already happened change nothing; it cannot go back across its pivot.",
    },
    "resolve": {
        "label": "Mark resolved",
        "verb": "mark resolved",
        "explain": "Say the FAILED saga was repaired by hand. It stays FAILED, leaves the list of sagas needing an "
        "operator, and no operator action moves it any more. Say what was done: the comment is required.",
    },
}


def definition_for(saga: SagaInstance) -> SagaDefinition | None:
    try:
        return definitions.get(saga.type, saga.version)
    except DefinitionError:
        return None


# --- filters -----------------------------------------------------------------------------------


class StuckFilter(admin.SimpleListFilter):
    title = "stuck"
    parameter_name = "stuck"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "stuck"), ("no", "not stuck")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "yes":
            return queryset.filter(saga_stuck_q())
        if self.value() == "no":
            return queryset.exclude(saga_stuck_q())
        return queryset


class RetryingFilter(admin.SimpleListFilter):
    title = "retrying long"
    parameter_name = "retrying"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", f"one step {saga_settings.SAGA_LONG_RETRY_ATTEMPTS}+ times")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        return queryset.filter(saga_retrying_long_q()) if self.value() == "yes" else queryset


class AttentionFilter(admin.SimpleListFilter):
    title = "failed sagas"
    parameter_name = "resolved"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("no", "needing an operator"), ("yes", "resolved by an operator")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "no":
            return queryset.filter(saga_needs_operator_q())
        if self.value() == "yes":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


STARTED_WITHIN = {
    "1h": ("in the last hour", timedelta(hours=1)),
    "24h": ("in the last day", timedelta(days=1)),
    "7d": ("in the last 7 days", timedelta(days=7)),
}


class StartedFilter(admin.SimpleListFilter):
    title = "started"
    parameter_name = "started"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [(key, label) for key, (label, _) in STARTED_WITHIN.items()]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        period = STARTED_WITHIN.get(self.value() or "")
        return queryset.filter(created_at__gte=timezone.now() - period[1]) if period else queryset


# --- forms of the operator actions -----------------------------------------------------------


class OperateForm(forms.Form):
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 70}),
        help_text="Required: why, or what was done. Kept in the audit trail with who and when.",
    )
    token = forms.CharField(widget=forms.HiddenInput)
    step = forms.ChoiceField(required=False, help_text="The step to run again from.")

    def __init__(self, *args: Any, action: str, steps: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.action = action
        if action == "rewind":
            step = self.fields["step"]
            assert isinstance(step, forms.ChoiceField)  # declared above
            step.choices = [(name, name) for name in steps or []]
            step.required = True
        else:
            del self.fields["step"]
        if action == "replay":  # a dead letter's replay changes no saga by itself: the handler decides
            self.fields["comment"].required = False
            self.fields["comment"].help_text = "Why: kept in the audit trail."


def _operation(action: str, request: HttpRequest, saga_id: uuid.UUID, data: dict[str, Any]) -> OperatorAction:
    key = f"{data['token']}:{saga_id}"
    common = {"saga_id": saga_id, "by": request.user, "comment": data.get("comment", ""), "key": key}
    if action == "retry":
        return services.saga_retry(**common)
    if action == "compensate":
        return services.saga_compensate(**common)
    if action == "rewind":
        return services.saga_rewind(step=data["step"], **common)
    if action == "resolve":
        return services.saga_resolve(**common)
    raise Http404(f"no operator action {action!r}")


def _report(admin_: admin.ModelAdmin, request: HttpRequest, record: OperatorAction) -> None:
    target = f"saga {short_id(record.saga_id)}" if record.saga_id else f"dead letter {record.dead_letter_id}"
    change = f" ({record.status_before} → {record.status_after})" if record.status_before != record.status_after else ""
    levels: dict[str, int] = {
        OperatorAction.Outcome.DONE: messages.SUCCESS,
        OperatorAction.Outcome.NOTHING: messages.INFO,
    }
    level = levels.get(record.outcome, messages.WARNING)
    admin_.message_user(request, f"{record.get_action_display()} of {target}: {record.detail}{change}", level)


# --- sagas -------------------------------------------------------------------------------------


@admin.register(SagaInstance)
class SagaInstanceAdmin(LedgerAdmin):
    list_display = ("saga", "status_badge", "aggregate", "current", "attempts", "age", "why")
    list_display_links = ("saga",)
    list_filter = ("status", AttentionFilter, StuckFilter, RetryingFilter, "type", StartedFilter)
    date_hierarchy = "created_at"
    search_fields = ("^id", "^aggregate_id", "^correlation_id")
    search_help_text = "A saga id, an aggregate (order) id or a customer id, whole or its first characters."
    list_per_page = 50
    actions = ("retry_selected", "compensate_selected", "rewind_selected", "resolve_selected")
    change_list_template = "admin/saga/sagainstance/change_list.html"

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(services.OPERATE_SAGAS)

    # list columns

    @admin.display(description="saga", ordering="id")
    def saga(self, saga: SagaInstance) -> SafeString:
        return format_html(
            '<code title="{}">{}</code><br><span class="quiet" style="font-weight:normal">{} v{}</span>',
            saga.id,
            short_id(saga.id),
            saga.type,
            saga.version,
        )

    @admin.display(description="status", ordering="status")
    def status_badge(self, saga: SagaInstance) -> SafeString:
        if saga.resolved_at is not None:
            return badge(saga.status, "FAILED · resolved", muted=True)
        return badge(saga.status)

    @admin.display(description="aggregate", ordering="aggregate_id")
    def aggregate(self, saga: SagaInstance) -> SafeString:
        link = aggregate_link(saga)
        if link is None:
            return format_html('<code title="{}">{}</code>', saga.aggregate_id, short_id(saga.aggregate_id))
        label, url = link
        return format_html(
            '<a href="{}" title="{}">{} {}</a>', url, saga.aggregate_id, label, short_id(saga.aggregate_id)
        )

    @admin.display(description="current step", ordering="current_step")
    def current(self, saga: SagaInstance) -> SafeString:
        if not saga.current_step:
            return mark_safe('<span class="quiet">—</span>')
        arrow = "↩ " if saga.direction == Direction.BACKWARD else ""
        return format_html("{}{}", arrow, breakable(saga.current_step))

    @admin.display(description="age", ordering="created_at")
    def age(self, saga: SagaInstance) -> SafeString:
        started = format_html('<span title="started {}">{}</span>', timestamp(saga.created_at), age(saga.created_at))
        if not saga_is_stuck(saga):
            return started
        return format_html(
            '{}<br><span class="saga-stuck" title="not moved since {}">⚠ stuck {}</span>',
            started,
            timestamp(saga.updated_at),
            age(saga.updated_at),
        )

    @admin.display(description="reason · last error")
    def why(self, saga: SagaInstance) -> SafeString:
        reason = format_html("<strong>{}</strong><br>", breakable(saga.reason)) if saga.reason else ""
        error = format_html('<span class="saga-error" title="{}">{}</span>', saga.error, shorten(saga.error, 90))
        return format_html("{}{}", reason, error)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[SagaInstance], search_term: str
    ) -> tuple[QuerySet[SagaInstance], bool]:
        term = search_term.strip()
        found, duplicates = super().get_search_results(request, queryset, term)
        if term:
            in_data = Q()
            for key in search_keys():
                in_data |= Q(**{f"data__{key}__istartswith": term})
            if in_data:
                found = found | queryset.filter(in_data)
        return found, duplicates

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        context = {"is_nav_sidebar_enabled": False, "title": "Sagas", **(extra_context or {})}
        return super().changelist_view(request, context)

    # the saga's page

    def get_urls(self) -> list[URLPattern]:
        operate = self.admin_site.admin_view(self.operate_view)
        own = [path("<uuid:saga_id>/operate/<str:action>/", operate, name="saga_sagainstance_operate")]
        return own + super().get_urls()

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        saga = self.get_object(request, object_id)
        if saga is None:
            raise Http404(f"no saga {object_id}")
        if not self.has_view_permission(request, saga):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "is_nav_sidebar_enabled": False,
            "opts": self.opts,
            "title": f"{saga.type} v{saga.version} · saga {short_id(saga.id)}",
            "subtitle": str(saga.id),
            **SagaPage(saga, request.user.has_perm(services.OPERATE_SAGAS)).context(),
        }
        return TemplateResponse(request, "admin/saga/sagainstance/detail.html", context)

    def operate_view(self, request: HttpRequest, saga_id: uuid.UUID, action: str) -> HttpResponseBase:
        if action not in ACTIONS:
            raise Http404(f"no operator action {action!r}")
        if not self.has_operate_permission(request):
            raise PermissionDenied
        saga = self.get_object(request, str(saga_id))
        if saga is None:
            raise Http404("no such saga")
        steps = rewind_steps(saga)
        detail_url = reverse("admin:saga_sagainstance_change", args=[saga.pk])
        if request.method == "POST":
            form = OperateForm(request.POST, action=action, steps=steps)
            if form.is_valid():
                try:
                    _report(self, request, _operation(action, request, saga.pk, form.cleaned_data))
                except (services.SagaStateConflict, services.OperatorKeyReused) as refused:
                    self.message_user(request, f"{ACTIONS[action]['label']} refused: {refused}", messages.ERROR)
                return HttpResponseRedirect(detail_url)
        else:
            form = OperateForm(action=action, steps=steps, initial={"token": uuid.uuid4().hex})
        return self._confirm(request, action, [saga], form, detail_url, "")

    def _confirm(
        self,
        request: HttpRequest,
        action: str,
        sagas: list[SagaInstance],
        form: OperateForm,
        back: str,
        list_action: str,
    ) -> TemplateResponse:
        rows = [(saga, why_not(action, saga)) for saga in sagas]
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{ACTIONS[action]['label']}: are you sure?",
            "action": action,
            "about": ACTIONS[action],
            "rows": [
                {
                    "saga": saga,
                    "status": badge(saga.status),
                    "url": reverse("admin:saga_sagainstance_change", args=[saga.pk]),
                    "refused": refused,
                }
                for saga, refused in rows
            ],
            "all_refused": all(refused for _, refused in rows),
            "form": form,
            "back": back,
            "selected": [str(saga.pk) for saga in sagas],
            "list_action": list_action,
        }
        return TemplateResponse(request, "admin/saga/sagainstance/confirm.html", context)

    # list actions: the same confirmation page, then each selected saga in turn

    def _bulk(self, request: HttpRequest, queryset: QuerySet[SagaInstance], action: str) -> TemplateResponse | None:
        sagas = list(queryset.order_by("created_at"))
        steps = sorted({step for saga in sagas for step in rewind_steps(saga)})
        back = reverse("admin:saga_sagainstance_changelist")
        if request.POST.get("confirm") == "yes":
            form = OperateForm(request.POST, action=action, steps=steps)
            if form.is_valid():
                for saga in sagas:
                    try:
                        _report(self, request, _operation(action, request, saga.pk, form.cleaned_data))
                    except (services.SagaStateConflict, services.OperatorKeyReused) as refused:
                        message = f"{ACTIONS[action]['label']} of saga {short_id(saga.pk)} refused: {refused}"
                        self.message_user(request, message, messages.WARNING)
                return None
        else:
            form = OperateForm(action=action, steps=steps, initial={"token": uuid.uuid4().hex})
        return self._confirm(request, action, sagas, form, back, f"{action}_selected")

    @admin.action(description="Retry the selected sagas", permissions=["operate"])
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[SagaInstance]) -> TemplateResponse | None:
        return self._bulk(request, queryset, "retry")

    @admin.action(description="Compensate the selected sagas (before their pivot)", permissions=["operate"])
    def compensate_selected(self, request: HttpRequest, queryset: QuerySet[SagaInstance]) -> TemplateResponse | None:
        return self._bulk(request, queryset, "compensate")

    @admin.action(description="Rewind the selected sagas to a step", permissions=["operate"])
    def rewind_selected(self, request: HttpRequest, queryset: QuerySet[SagaInstance]) -> TemplateResponse | None:
        return self._bulk(request, queryset, "rewind")

    @admin.action(description="Mark the selected FAILED sagas resolved", permissions=["operate"])
    def resolve_selected(self, request: HttpRequest, queryset: QuerySet[SagaInstance]) -> TemplateResponse | None:
        return self._bulk(request, queryset, "resolve")


def rewind_steps(saga: SagaInstance) -> list[str]:
    """The steps the saga may be rewound to: those it has reached, never back across its pivot."""
    definition = definition_for(saga)
    forward = saga.direction == Direction.FORWARD
    if definition is None or not forward or saga.resolved_at or saga.status not in (*ACTIVE, SagaStatus.FAILED):
        return []
    last = min(saga.step_index, len(definition.steps) - 1)
    first = definition.pivot_index + 1 if saga.step_index > definition.pivot_index else 0
    return [step.name for step in definition.steps[first : last + 1]]


def why_not(action: str, saga: SagaInstance) -> str:
    """Why the saga's state refuses `action` (as the engine would), or "" when it allows it."""
    if saga.resolved_at is not None:
        return "it was resolved by an operator"
    definition = definition_for(saga)
    if action == "retry":
        allowed = (SagaStatus.FAILED, SagaStatus.STARTED, SagaStatus.COMPENSATING)
        return "" if saga.status in allowed else f"a {saga.status} saga cannot be retried"
    if action == "compensate":
        if saga.status in (SagaStatus.COMPLETED, SagaStatus.COMPENSATED, SagaStatus.COMPENSATING):
            return f"a {saga.status} saga cannot be compensated"
        if saga.direction == Direction.FORWARD and definition and saga.step_index > definition.pivot_index:
            return "it has passed its pivot: it can only go forward"
        return ""
    if action == "rewind":
        return "" if rewind_steps(saga) else f"a {saga.status} saga cannot be rewound"
    if action == "resolve":
        return "" if saga.status == SagaStatus.FAILED else "only a FAILED saga can be resolved"
    return "unknown action"


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
            "timeline": self.timeline(),
            "outbox": self.outbox(),
            "inbox": self.inbox(),
            "data": data_table({k: v for k, v in saga.data.items() if not k.startswith("_")}),
            "engine_data": data_table({k: v for k, v in saga.data.items() if k.startswith("_")}),
            "buttons": self.buttons() if self.can_operate else [],
            "can_operate": self.can_operate,
        }

    def status(self) -> SafeString:
        if self.saga.resolved_at is not None:
            return badge(self.saga.status, "FAILED · resolved", muted=True)
        return badge(self.saga.status)

    def facts(self) -> list[tuple[str, Any]]:
        saga = self.saga
        facts: list[tuple[str, Any]] = [
            ("saga id", format_html("<code>{}</code>", saga.id)),
            ("type", f"{saga.type} v{saga.version}"),
        ]
        link = aggregate_link(saga)
        aggregate = format_html("<code>{}</code>", saga.aggregate_id)
        if link:
            aggregate = format_html('<a href="{}">{} <code>{}</code></a>', link[1], link[0], saga.aggregate_id)
        facts.append(("aggregate", aggregate))
        for label, text, url in related_links(saga):
            facts.append((label, format_html('<a href="{}">{}</a>', url, text)))
        direction = "rolling back ↩" if saga.direction == Direction.BACKWARD else "forward"
        current = self.running.step if self.running else saga.current_step or "—"
        facts += [
            ("current step", format_html("<strong>{}</strong> ({})", current, direction)),
            ("attempts at it", saga.attempts),
            ("reason", saga.reason or "—"),
        ]
        if saga.error:
            facts.append(("last error", format_html('<pre class="saga-pre">{}</pre>', saga.error)))
        facts += [
            (
                "started",
                format_html(
                    "{} <span class='quiet'>({} ago)</span>", timestamp(saga.created_at), age(saga.created_at, self.now)
                ),
            ),
            (
                "last moved",
                format_html(
                    "{} <span class='quiet'>({} ago)</span>", timestamp(saga.updated_at), age(saga.updated_at, self.now)
                ),
            ),
        ]
        for label, moment in (("backoff until", saga.retry_at), ("timer", saga.timer_at), ("deadline", saga.deadline)):
            if moment is not None:
                facts.append((label, timestamp(moment)))
        if saga.resolved_at is not None:
            facts.append(("resolved", timestamp(saga.resolved_at)))
        if self.running is not None:
            facts.append(("running", _running_fact(self.running, self.now)))
        if saga_is_stuck(saga, self.now, running=self.running):
            facts.append(("stuck", format_html('<span class="saga-stuck">⚠ {}</span>', self.why_stuck())))
        facts.append(("request id", format_html("<code>{}</code>", saga.correlation_id)))
        return facts

    def why_stuck(self) -> str:
        if self.running is None:
            return "should have moved by now"
        return f"running past its timeout ({duration(self.running.timeout)})"

    def diagram(self) -> SafeString:
        if self.definition is None:
            return admin_diagram.unavailable(self.saga, "no definition of this version")
        return admin_diagram.render(self.definition, self.saga, self.steps)

    def timeline(self) -> list[dict[str, Any]]:
        """Every attempt in the order it was written, the pivot marked where it was passed, and the
        operators' actions between the attempts they came between."""
        pivot = ""
        waits: dict[str, str] = {}
        if self.definition is not None:
            for step in self.definition.steps:
                if isinstance(step, Step) and step.kind == StepKind.PIVOT:
                    pivot = step.name
                if isinstance(step, Wait):
                    waits[step.name] = step.event
        operators = list(self.saga.operator_actions.order_by("created_at", "id"))
        replies = self.saga.data.get(REPLIES_KEY, {})
        rows: list[dict[str, Any]] = []
        for row in self.steps:
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
                    "duration": duration(end - row.started_at) if end else f"{age(row.started_at, self.now)} so far",
                    "error": row.error,
                    "error_short": shorten(row.error, 90),
                    "waited": _waited_for(row, waits, replies),
                }
            )
            if is_pivot and row.status == SagaStep.Status.SUCCEEDED:
                rows.append({"kind": "pivot", "name": pivot})
        if self.running is not None and not self.saga.claimed:  # (a claimed attempt has its row above)
            rows.append(_running_row(self.running, self.now))
        rows.extend(_operator_row(action) for action in operators)
        return rows

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


def _running_fact(running: Running, now: datetime) -> SafeString:
    return format_html(
        "<strong>{}</strong> ({}) running attempt {} since {} <span class='quiet'>({} so far)</span>",
        running.step,
        running.kind,
        running.attempt,
        timestamp(running.since),
        age(running.since, now),
    )


def _running_row(running: Running, now: datetime) -> dict[str, Any]:
    """The timeline's row of an attempt running in its saga's transaction (nothing of it is written yet)."""
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
    if data is None:
        return mark_safe('<span class="quiet">null</span>')
    if isinstance(data, bool):
        return format_html("{}", "yes" if data else "no")
    return format_html("{}", data)


# --- the outbox, the inbox, the commands served, the audit trail ------------------------------


@admin.register(OutboxMessage)
class OutboxMessageAdmin(LedgerAdmin):
    list_display = ("position", "type", "topic", "key", "correlation", "created", "sent")
    list_filter = (("sent_at", admin.EmptyFieldListFilter), "topic", "type")
    search_fields = ("=aggregate_id", "^correlation_id", "^id")
    search_help_text = "A message id, its key (the id of what it is about) or its correlation id (the saga id)."
    readonly_fields = (
        "id",
        "position",
        "topic",
        "type",
        "key",
        "correlation",
        "causation_id",
        "created",
        "sent",
        "payload_json",
    )
    fields = readonly_fields
    created = ms_field("created_at", "created")

    @admin.display(description="key", ordering="aggregate_id")
    def key(self, message: OutboxMessage) -> str:
        return f"{message.aggregate_type}:{message.aggregate_id}"

    @admin.display(description="correlation id")
    def correlation(self, message: OutboxMessage) -> SafeString:
        saga = None
        if message.correlation_id is not None:
            saga = SagaInstance.objects.filter(pk=message.correlation_id).values_list("pk", flat=True).first()
        if saga is None:
            return format_html("<code>{}</code>", short_id(message.correlation_id))
        url = reverse("admin:saga_sagainstance_change", args=[saga])
        return format_html('<a href="{}" title="the saga">saga {}</a>', url, short_id(saga))

    @admin.display(description="sent", ordering="sent_at")
    def sent(self, message: OutboxMessage) -> SafeString:
        if message.sent_at is None:
            return badge("FAILED", "unsent", muted=True)
        return format_html("{}", timestamp(message.sent_at))

    @admin.display(description="payload")
    def payload_json(self, message: OutboxMessage) -> SafeString:
        return format_html('<pre class="saga-pre">{}</pre>', json.dumps(message.payload, indent=2))

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        unsent = OutboxMessage.objects.filter(sent_at__isnull=True).count()
        self.message_user(request, f"Unsent: {unsent} · relay lag: {outbox_lag_seconds():.1f} s", messages.INFO)
        return super().changelist_view(request, extra_context)


@admin.register(InboxMessage)
class InboxMessageAdmin(LedgerAdmin):
    list_display = ("id", "type", "topic", "key", "correlation_id", "received")
    list_filter = ("topic", "type")
    search_fields = ("^id", "^correlation_id", "=key")
    received = ms_field("received_at", "received")


class DeadLetterStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("open", "open"), ("replayed", "replayed"), ("discarded", "discarded")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value == "open":
            return queryset.filter(resolution="")
        if value in ("replayed", "discarded"):
            return queryset.filter(resolution=value)
        return queryset


DEAD_LETTER_ACTIONS = {
    "replay": {
        "label": "Replay",
        "explain": "Consume the message again through the inbox, with today's handlers. It is acted on at most "
        "once: if its id was consumed before, nothing happens. If it still cannot be used, it stays here with "
        "its new error.",
    },
    "discard": {
        "label": "Discard",
        "explain": "Set the message aside for good. Nothing is done with it. Say why: the comment is required.",
    },
}


def no_longer_open(letter: DeadLetter) -> str:
    return f"dead letter {letter.pk} was {letter.resolution} already: only an open one is replayed or discarded"


@admin.register(DeadLetter)
class DeadLetterAdmin(LedgerAdmin):
    list_display = ("received", "where", "message_type", "short_error", "state")
    list_filter = (DeadLetterStateFilter, "topic")
    search_fields = ("value", "error")
    readonly_fields = ("received", "where", "key", "message_type", "error", "value_pretty", "state", "audit")
    fields = readonly_fields
    actions = ("replay_selected", "discard_selected")
    received = ms_field("received_at", "received")
    change_form_template = "admin/saga/deadletter/change_form.html"

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(services.OPERATE_DEAD_LETTERS)

    @admin.display(description="from")
    def where(self, letter: DeadLetter) -> str:
        return f"{letter.topic}[{letter.partition}]@{letter.offset}"

    @admin.display(description="type")
    def message_type(self, letter: DeadLetter) -> str:
        try:
            body = json.loads(letter.value)
        except ValueError:
            return "(not JSON)"
        return str(body.get("type", "?")) if isinstance(body, dict) else "(not an envelope)"

    @admin.display(description="error")
    def short_error(self, letter: DeadLetter) -> SafeString:
        return format_html('<span title="{}">{}</span>', letter.error, shorten(letter.error, 80))

    @admin.display(description="state", ordering="resolution")
    def state(self, letter: DeadLetter) -> SafeString:
        if not letter.resolution:
            return badge("FAILED", "open")
        status = "SUCCEEDED" if letter.resolution == DeadLetter.Resolution.REPLAYED else "SKIPPED"
        return format_html("{} {}", badge(status, letter.resolution), timestamp(letter.resolved_at))

    @admin.display(description="message")
    def value_pretty(self, letter: DeadLetter) -> SafeString:
        try:
            text = json.dumps(json.loads(letter.value), indent=2)
        except ValueError:
            text = letter.value
        return format_html('<pre class="saga-pre">{}</pre>', text)

    @admin.display(description="operators")
    def audit(self, letter: DeadLetter) -> SafeString:
        rows = letter.operator_actions.order_by("created_at")
        if not rows:
            return mark_safe('<span class="quiet">none yet</span>')
        return format_html_join(
            mark_safe("<br>"),
            "{} · {} · {} · {} {}",
            (
                (
                    timestamp(r.created_at),
                    r.username or "system",
                    r.get_action_display(),
                    r.detail,
                    f"“{r.comment}”" if r.comment else "",
                )
                for r in rows
            ),
        )

    def get_urls(self) -> list[URLPattern]:
        operate = self.admin_site.admin_view(self.operate_view)
        own = [path("<int:letter_id>/operate/<str:action>/", operate, name="saga_deadletter_operate")]
        return own + super().get_urls()

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        buttons = []
        letter = self.get_object(request, object_id) if object_id.isdigit() else None
        if self.has_operate_permission(request) and letter is not None and not letter.resolution:
            buttons = [
                {
                    "label": about["label"],
                    "url": reverse("admin:saga_deadletter_operate", args=[int(object_id), action]),
                }
                for action, about in DEAD_LETTER_ACTIONS.items()
            ]
        return super().change_view(request, object_id, form_url, {"buttons": buttons, **(extra_context or {})})

    def operate_view(self, request: HttpRequest, letter_id: int, action: str) -> HttpResponseBase:
        if action not in DEAD_LETTER_ACTIONS:
            raise Http404(f"no dead-letter action {action!r}")
        if not self.has_operate_permission(request):
            raise PermissionDenied
        letter = self.get_object(request, str(letter_id))
        if letter is None:
            raise Http404("no such dead letter")
        back = reverse("admin:saga_deadletter_change", args=[letter.pk])
        if letter.resolution:
            self.message_user(request, no_longer_open(letter), messages.ERROR)
            return HttpResponseRedirect(back)
        if request.method == "POST":
            form = OperateForm(request.POST, action=action)
            if form.is_valid():
                self._operate(request, action, letter, form.cleaned_data)
                return HttpResponseRedirect(back)
        else:
            form = OperateForm(action=action, initial={"token": uuid.uuid4().hex})
        return self._confirm(request, action, [letter], form, back, "")

    def _operate(self, request: HttpRequest, action: str, letter: DeadLetter, data: dict[str, Any]) -> None:
        command: Callable[..., OperatorAction] = (
            services.dead_letter_replay if action == "replay" else services.dead_letter_discard
        )
        try:
            record = command(
                dead_letter_id=letter.pk, by=request.user, comment=data["comment"], key=f"{data['token']}:{letter.pk}"
            )
        except services.OperatorKeyReused as refused:
            self.message_user(request, f"{action} refused: {refused}", messages.ERROR)
        else:
            _report(self, request, record)

    def _confirm(
        self, request: HttpRequest, action: str, letters: list[DeadLetter], form: OperateForm, back: str, bulk: str
    ) -> TemplateResponse:
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"{DEAD_LETTER_ACTIONS[action]['label']} dead letters: are you sure?",
            "about": DEAD_LETTER_ACTIONS[action],
            "letters": [
                (letter, self.where(letter), self.message_type(letter), letter.resolution) for letter in letters
            ],
            "form": form,
            "back": back,
            "selected": [str(letter.pk) for letter in letters],
            "list_action": bulk,
            "action": action,
        }
        return TemplateResponse(request, "admin/saga/deadletter/confirm.html", context)

    def _bulk(self, request: HttpRequest, queryset: QuerySet[DeadLetter], action: str) -> TemplateResponse | None:
        letters = list(queryset.order_by("received_at"))
        if request.POST.get("confirm") == "yes":
            form = OperateForm(request.POST, action=action)
            if form.is_valid():
                for letter in letters:
                    if letter.resolution:
                        self.message_user(request, no_longer_open(letter), messages.ERROR)
                    else:
                        self._operate(request, action, letter, form.cleaned_data)
                return None
        else:
            form = OperateForm(action=action, initial={"token": uuid.uuid4().hex})
        back = reverse("admin:saga_deadletter_changelist")
        return self._confirm(request, action, letters, form, back, f"{action}_selected")

    @admin.action(description="Replay the selected dead letters through the inbox", permissions=["operate"])
    def replay_selected(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> TemplateResponse | None:
        return self._bulk(request, queryset, "replay")

    @admin.action(description="Discard the selected dead letters", permissions=["operate"])
    def discard_selected(self, request: HttpRequest, queryset: QuerySet[DeadLetter]) -> TemplateResponse | None:
        return self._bulk(request, queryset, "discard")


@admin.register(ProcessedCommand)
class ProcessedCommandAdmin(LedgerAdmin):
    list_display = ("command_id", "participant", "command", "processed")
    list_filter = ("participant", "command")
    search_fields = ("^command_id",)
    processed = ms_field("processed_at", "processed")


@admin.register(OperatorAction)
class OperatorActionAdmin(LedgerAdmin):
    list_display = ("when", "who", "action", "target", "step", "change", "outcome", "detail", "comment")
    list_filter = ("action", "outcome", "username")
    search_fields = ("^saga__id", "username", "comment")
    when = ms_field("created_at", "when")

    @admin.display(description="who", ordering="username")
    def who(self, record: OperatorAction) -> str:
        return record.username or "system"

    @admin.display(description="target")
    def target(self, record: OperatorAction) -> SafeString:
        if record.saga_id:
            url = reverse("admin:saga_sagainstance_change", args=[record.saga_id])
            return format_html('<a href="{}">saga {}</a>', url, short_id(record.saga_id))
        url = reverse("admin:saga_deadletter_change", args=[record.dead_letter_id])
        return format_html('<a href="{}">dead letter {}</a>', url, record.dead_letter_id)

    @admin.display(description="status")
    def change(self, record: OperatorAction) -> str:
        if not record.status_before:
            return ""
        return (
            record.status_before
            if record.status_before == record.status_after
            else f"{record.status_before} → {record.status_after}"
        )
