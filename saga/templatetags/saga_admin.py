"""Template tags of the saga admin: times to the millisecond, status badges, and the dashboard of
the admin index (saga.operator.dashboard)."""

from datetime import datetime
from typing import Any

from django import template
from django.utils.safestring import SafeString

from saga.operator.dashboard import dashboard
from saga.operator.display import badge, timestamp

register = template.Library()


@register.filter
def ms(moment: datetime | None) -> str:
    return timestamp(moment)


@register.filter
def status_badge(status: str, label: str = "") -> SafeString:
    return badge(status, label or None)


@register.filter
def muted_badge(status: str, label: str = "") -> SafeString:
    return badge(status, label or None, muted=True)


@register.inclusion_tag("saga/admin/dashboard.html", takes_context=True)
def saga_dashboard(context: dict[str, Any]) -> dict[str, Any]:
    return dashboard(context["request"].user)
