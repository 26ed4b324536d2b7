"""The dead letters: messages the consumer could not use, set aside with their error. An operator
replays one through the inbox or discards it, from its page or from the list, after confirming.
Operating needs `saga.change_deadletter`."""

import json
from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from saga import services
from saga.models import DeadLetter, OperatorAction
from saga.operator.admin.filters import DeadLetterStateFilter
from saga.operator.admin.operate import Cell, OperatedAdmin, OperateForm, list_actions, report
from saga.operator.display import badge, ms_field, shorten, timestamp

DEAD_LETTER_ACTIONS = {
    "replay": {
        "label": "Replay",
        "selected": "Replay the selected dead letters through the inbox",
        "explain": "Consume the message again through the inbox, with today's handlers. It is acted on at most "
        "once: if its id was consumed before, nothing happens. If it still cannot be used, it stays here with "
        "its new error.",
    },
    "discard": {
        "label": "Discard",
        "selected": "Discard the selected dead letters",
        "explain": "Set the message aside for good. Nothing is done with it. Say why: the comment is required.",
    },
}


def no_longer_open(letter: DeadLetter) -> str:
    return f"dead letter {letter.pk} was {letter.resolution} already: only an open one is replayed or discarded"


@admin.register(DeadLetter)
class DeadLetterAdmin(OperatedAdmin):
    list_display = ("received", "where", "message_type", "short_error", "state")
    list_filter = (DeadLetterStateFilter, "topic")
    search_fields = ("value", "error")
    readonly_fields = ("received", "where", "key", "message_type", "error", "value_pretty", "state", "audit")
    fields = readonly_fields
    actions = list_actions(DEAD_LETTER_ACTIONS)
    received = ms_field("received_at", "received")
    change_form_template = "admin/saga/deadletter/change_form.html"
    operations = DEAD_LETTER_ACTIONS
    operate_permission = services.OPERATE_DEAD_LETTERS
    id_converter = "int"

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

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        """The page of an open dead letter has a button for each action, for those who may operate."""
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

    # the operator actions: one dead letter from its page, or those selected in the list

    def operate(self, request: HttpRequest, action: str, letter: DeadLetter) -> HttpResponseBase:
        back = reverse("admin:saga_deadletter_change", args=[letter.pk])
        if letter.resolution:
            self.message_user(request, no_longer_open(letter), messages.ERROR)
            return HttpResponseRedirect(back)
        posted = request.method == "POST"
        form = OperateForm.for_request(request, action, posted=posted)
        if posted and form.is_valid():
            self._operate(request, action, letter, form.cleaned_data)
            return HttpResponseRedirect(back)
        return self._confirm(request, action, [letter], form, back, "")

    def bulk(self, request: HttpRequest, queryset: QuerySet[DeadLetter], action: str) -> TemplateResponse | None:
        letters = list(queryset.order_by("received_at"))
        posted = request.POST.get("confirm") == "yes"
        form = OperateForm.for_request(request, action, posted=posted)
        if posted and form.is_valid():
            for letter in letters:
                if letter.resolution:
                    self.message_user(request, no_longer_open(letter), messages.ERROR)
                else:
                    self._operate(request, action, letter, form.cleaned_data)
            return None
        back = reverse("admin:saga_deadletter_changelist")
        return self._confirm(request, action, letters, form, back, f"{action}_selected")

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
            report(self, request, record)

    def _confirm(
        self, request: HttpRequest, action: str, letters: list[DeadLetter], form: OperateForm, back: str, bulk: str
    ) -> TemplateResponse:
        return self.confirm_page(
            request,
            title=f"{DEAD_LETTER_ACTIONS[action]['label']} dead letters: are you sure?",
            about=DEAD_LETTER_ACTIONS[action],
            columns=("dead letter", "from", "type", "state"),
            rows=[(letter, self._confirm_cells(letter)) for letter in letters],
            form=form,
            back=back,
            list_action=bulk,
        )

    def _confirm_cells(self, letter: DeadLetter) -> list[Cell]:
        """A dead letter's row on the confirmation page; one no longer open is left as it is."""
        url = reverse("admin:saga_deadletter_change", args=[letter.pk])
        state = "open"
        if letter.resolution:
            state = format_html('<span class="refused">already {}: nothing will be done</span>', letter.resolution)
        return [
            format_html('<a href="{}">#{}</a>', url, letter.pk),
            self.where(letter),
            self.message_type(letter),
            state,
        ]
