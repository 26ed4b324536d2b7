"""The filters of the saga list (stuck, retrying long, needing an operator, started when) and of
the dead letters (open, replayed, discarded)."""

from datetime import timedelta
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from saga.core.conf import saga_settings
from saga.selectors import saga_needs_operator_q, saga_retrying_long_q, saga_stuck_q


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
