"""The contexts' admin kit: the read-only ledger admin and inline, the admin of a row its context
creates, updates and deletes through services (customers, products), and the contexts' status
badges. Built on the engine's public admin display (`saga.operator.display`), so a context's page
shows a time, an id and a status as the engine's pages do."""

from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.safestring import SafeString

from common.crud import delete_refusal
from saga.operator import display
from saga.operator.display import AMBER, BLUE, GREEN, GREY, PURPLE, LedgerAdmin, ReadOnly, ms_field, short_id

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldGroups  # the stubs' name for what get_fields returns

__all__ = ["COLORS", "CrudAdmin", "LedgerAdmin", "LedgerInline", "badge", "ms_field", "short_id"]

# The contexts' statuses: blue in hand, purple waiting on someone else, green done, amber refused,
# grey undone.
COLORS = {
    # orders
    "PENDING": BLUE,
    "AWAITING_ACCEPTANCE": PURPLE,
    "CONFIRMED": GREEN,
    "REJECTED": AMBER,
    "CANCELLED": GREY,
    # funds holds, stock reservations, payments
    "HELD": BLUE,
    "RESERVED": BLUE,
    "AUTHORIZED": BLUE,
    "REFUSED": AMBER,
    "DECLINED": AMBER,
    "RELEASED": GREY,
    "VOIDED": GREY,
    "CONSUMED": GREEN,
    "COMMITTED": GREEN,
    "CAPTURED": GREEN,
}


def badge(status: str) -> SafeString:
    """A context's status as a colored pill, like the engine's."""
    return display.badge(status, colors=COLORS)


class LedgerInline(ReadOnly, admin.TabularInline):
    """The rows of a ledger record (a reservation's lines): shown with it, never edited."""

    extra = 0
    can_delete = False


class CrudAdmin(admin.ModelAdmin):
    def changeform_view(
        self, request: HttpRequest, object_id: str | None = None, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        """A save the service refuses after the form passed it lost a race: another transaction
        committed the row it conflicts with (the same email, at once). Nothing was saved; the form,
        run again, sees that row and answers the refusal as a form error."""
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except ValidationError:
            return super().changeform_view(request, object_id, form_url, extra_context)

    def get_fields(self, request: HttpRequest, obj: Model | None = None) -> "_FieldGroups":
        """The add form shows only what is entered: an unsaved row has no id, nothing reserved
        and nothing to compute (a computed column would read fields that are still empty)."""
        fields = super().get_fields(request, obj)
        if obj is not None:
            return fields
        shown_only = set(self.get_readonly_fields(request, obj))
        return [field for field in fields if field not in shown_only]

    def get_deleted_objects(
        self, objs: Sequence[Model] | QuerySet[Model], request: HttpRequest
    ) -> tuple[list[str], dict[str, int], set[str], list[str]]:
        """A row still referenced is refused with the service's reason, as the API answers it,
        instead of Django's list of related records the user may not delete."""
        refusals = [str(refusal) for row in objs if (refusal := delete_refusal(row)) is not None]
        if refusals:
            return [], {}, set(), refusals
        return super().get_deleted_objects(objs, request)
