"""What the admins of operated rows (sagas, dead letters) share: the form of an operator action,
the page that asks to confirm it, its URL, its permission and the message that reports it. The
actions themselves go through `saga.services` (permission, audit, idempotency)."""

import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import Http404, HttpRequest, HttpResponseBase
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from django.utils.safestring import SafeString

from saga.models import OperatorAction
from saga.operator.display import LedgerAdmin, short_id

Cell = str | SafeString  # one cell of the confirmation page's table


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

    @classmethod
    def for_request(
        cls, request: HttpRequest, action: str, steps: list[str] | None = None, *, posted: bool
    ) -> "OperateForm":
        """The form as posted, or a blank one with a new token: the token makes a resubmitted form
        (a double click, the browser's back and submit) one action, not two."""
        if posted:
            return cls(request.POST, action=action, steps=steps)
        return cls(action=action, steps=steps, initial={"token": uuid.uuid4().hex})


def report(model_admin: admin.ModelAdmin, request: HttpRequest, record: OperatorAction) -> None:
    """Tell the operator what the action did, from its audit row."""
    target = f"saga {short_id(record.saga_id)}" if record.saga_id else f"dead letter {record.dead_letter_id}"
    change = f" ({record.status_before} → {record.status_after})" if record.status_before != record.status_after else ""
    levels: dict[str, int] = {
        OperatorAction.Outcome.DONE: messages.SUCCESS,
        OperatorAction.Outcome.NOTHING: messages.INFO,
    }
    level = levels.get(record.outcome, messages.WARNING)
    model_admin.message_user(request, f"{record.get_action_display()} of {target}: {record.detail}{change}", level)


class OperatedAdmin(LedgerAdmin):
    """A ledger admin whose rows an operator acts on: each action has a page of its own under the
    row (`<id>/operate/<action>/`) and a list action, both asking to confirm first."""

    operations: Mapping[str, Mapping[str, str]]  # action -> its label, explanation, list action's (and verb)
    operate_permission: str  # the permission an operator needs, as saga.services checks it
    id_converter: str  # the path converter of the model's primary key: "uuid", "int"

    def has_operate_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(self.operate_permission)

    def get_urls(self) -> list[URLPattern]:
        operate = self.admin_site.admin_view(self.operate_view)
        name = f"{self.opts.app_label}_{self.opts.model_name}_operate"
        own = [path(f"<{self.id_converter}:object_id>/operate/<str:action>/", operate, name=name)]
        return own + super().get_urls()

    def operate_view(self, request: HttpRequest, object_id: Any, action: str) -> HttpResponseBase:
        if action not in self.operations:
            raise Http404(f"no operator action {action!r}")
        if not self.has_operate_permission(request):
            raise PermissionDenied
        row = self.get_object(request, str(object_id))
        if row is None:
            raise Http404(f"no such {self.opts.verbose_name}")
        return self.operate(request, action, row)

    def operate(self, request: HttpRequest, action: str, row: Any) -> HttpResponseBase:
        """The page of `action` on one row: the confirmation, then the action."""
        raise NotImplementedError

    def bulk(self, request: HttpRequest, queryset: QuerySet[Any], action: str) -> TemplateResponse | None:
        """`action` on the rows selected in the list: the confirmation page, then each row in turn
        (None: back to the list, with a message for each)."""
        raise NotImplementedError

    def confirm_page(
        self,
        request: HttpRequest,
        *,
        title: str,
        about: Mapping[str, str],
        columns: Sequence[str],
        rows: list[tuple[Model, Sequence[Cell]]],
        form: OperateForm,
        back: str,
        list_action: str,
        all_refused: bool = False,
    ) -> TemplateResponse:
        """Are you sure? The rows the action would act on, one table row each, and the form. From
        a list action (`list_action`), the page posts back to the list with the rows selected."""
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": title,
            "about": about,
            "columns": columns,
            "rows": [cells for _, cells in rows],
            "all_refused": all_refused,
            "form": form,
            "back": back,
            "selected": [str(row.pk) for row, _ in rows],
            "list_action": list_action,
        }
        return TemplateResponse(request, "admin/saga/confirm.html", context)


ListAction = Callable[[OperatedAdmin, HttpRequest, QuerySet[Any]], TemplateResponse | None]


def list_actions(operations: Mapping[str, Mapping[str, str]]) -> tuple[ListAction, ...]:
    """The list actions `<action>_selected` of an operated admin, described by each operation's
    "selected", for those who may operate."""
    return tuple(_list_action(action, about["selected"]) for action, about in operations.items())


def _list_action(action: str, description: str) -> ListAction:
    @admin.action(description=description, permissions=["operate"])
    def selected(model_admin: OperatedAdmin, request: HttpRequest, queryset: QuerySet[Any]) -> TemplateResponse | None:
        return model_admin.bulk(request, queryset, action)

    selected.__name__ = f"{action}_selected"
    return selected
