"""The saga list (filters, search, a row's status, step, age and error) and a saga's page, with
the operator actions: a button on the page, or a list action on the selected sagas, each asking to
confirm first. Operating needs `saga.change_sagainstance`; a staff user with only the view
permission sees everything and no action button."""

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator

from saga import services
from saga.models import Direction, SagaInstance
from saga.operator.admin.filters import AttentionFilter, RetryingFilter, StartedFilter, StuckFilter
from saga.operator.admin.operate import Cell, OperatedAdmin, OperateForm, list_actions, report
from saga.operator.admin.page import SagaPage, saga_badge
from saga.operator.admin.saga_actions import ACTIONS, rewind_steps, saga_operate, why_not
from saga.operator.display import age, badge, breakable, short_id, shorten, timestamp
from saga.operator.links import aggregate_link, search_keys
from saga.selectors import saga_is_stuck

REFUSED = (services.SagaStateConflict, services.OperatorKeyReused)  # the engine said no: nothing changed


@admin.register(SagaInstance)
class SagaInstanceAdmin(OperatedAdmin):
    list_display = ("saga", "status_badge", "aggregate", "current", "attempts", "age", "why")
    list_display_links = ("saga",)
    list_filter = ("status", AttentionFilter, StuckFilter, RetryingFilter, "type", StartedFilter)
    date_hierarchy = "created_at"
    search_fields = ("^id", "^aggregate_id", "^correlation_id")
    search_help_text = "A saga id, an aggregate (order) id or a customer id, whole or its first characters."
    list_per_page = 50
    actions = list_actions(ACTIONS)
    change_list_template = "admin/saga/sagainstance/change_list.html"
    operations = ACTIONS
    operate_permission = services.OPERATE_SAGAS
    id_converter = "uuid"

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
        return saga_badge(saga)

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
        """Also the sagas whose data holds the term under a key the project registered (a customer id)."""
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
            **SagaPage(saga, self.has_operate_permission(request)).context(),
        }
        return TemplateResponse(request, "admin/saga/sagainstance/detail.html", context)

    # the operator actions: one saga from its page, or the sagas selected in the list

    def operate(self, request: HttpRequest, action: str, saga: SagaInstance) -> HttpResponseBase:
        detail_url = reverse("admin:saga_sagainstance_change", args=[saga.pk])
        posted = request.method == "POST"
        form = OperateForm.for_request(request, action, rewind_steps(saga), posted=posted)
        if posted and form.is_valid():
            try:
                report(self, request, saga_operate(action, request, saga.pk, form.cleaned_data))
            except REFUSED as refused:
                self.message_user(request, f"{ACTIONS[action]['label']} refused: {refused}", messages.ERROR)
            return HttpResponseRedirect(detail_url)
        return self._confirm(request, action, [saga], form, detail_url, "")

    def bulk(self, request: HttpRequest, queryset: QuerySet[SagaInstance], action: str) -> TemplateResponse | None:
        sagas = list(queryset.order_by("created_at"))
        steps = sorted({step for saga in sagas for step in rewind_steps(saga)})
        posted = request.POST.get("confirm") == "yes"
        form = OperateForm.for_request(request, action, steps, posted=posted)
        if posted and form.is_valid():
            for saga in sagas:
                try:
                    report(self, request, saga_operate(action, request, saga.pk, form.cleaned_data))
                except REFUSED as refused:
                    message = f"{ACTIONS[action]['label']} of saga {short_id(saga.pk)} refused: {refused}"
                    self.message_user(request, message, messages.WARNING)
            return None
        back = reverse("admin:saga_sagainstance_changelist")
        return self._confirm(request, action, sagas, form, back, f"{action}_selected")

    def _confirm(
        self, request: HttpRequest, action: str, sagas: list[SagaInstance], form: OperateForm, back: str, bulk: str
    ) -> TemplateResponse:
        refusals = [why_not(action, saga) for saga in sagas]
        return self.confirm_page(
            request,
            title=f"{ACTIONS[action]['label']}: are you sure?",
            about=ACTIONS[action],
            columns=("saga", "type", "status", "at step", "error", ""),
            rows=[(saga, _confirm_cells(saga, refused)) for saga, refused in zip(sagas, refusals, strict=True)],
            form=form,
            back=back,
            list_action=bulk,
            all_refused=all(refusals),
        )


def _confirm_cells(saga: SagaInstance, refused: str) -> list[Cell]:
    """A saga's row on the confirmation page, with why its state will refuse the action, if it will."""
    return [
        format_html(
            '<a href="{}"><code>{}</code></a>', reverse("admin:saga_sagainstance_change", args=[saga.pk]), saga.id
        ),
        f"{saga.type} v{saga.version}",
        badge(saga.status),
        saga.current_step or "—",
        format_html('<span class="quiet">{}</span>', Truncator(saga.error).chars(80)),
        format_html('<span class="refused">will be refused: {}</span>', refused) if refused else "",
    ]
