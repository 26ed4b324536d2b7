"""The admin of a row its context creates, updates and deletes through services (customers,
products): what every such admin shares."""

from collections.abc import Sequence
from typing import TYPE_CHECKING

from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse

from common.crud import delete_refusal

if TYPE_CHECKING:
    from django.contrib.admin.options import _FieldGroups  # the stubs' name for what get_fields returns


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
