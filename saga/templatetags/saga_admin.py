"""Template tags of the saga admin: times to the millisecond, and the dashboard of the admin index."""

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django import template
from django.db.models import Count, Min
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString

from saga.core.conf import saga_settings
from saga.operator.display import age, badge, duration, short_id, timestamp

from ..messaging.relay import outbox_lag_seconds
from ..models import DeadLetter, OutboxMessage, SagaInstance, SagaStatus
from ..selectors import saga_needs_operator_q, saga_retrying_long_q, saga_stuck_q

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
    """Sagas per status in the last hour and day, stuck and failed sagas, the outbox's backlog
    and the dead letters, each linking to the list that shows them."""
    request = context["request"]
    user = request.user
    shown = {
        "sagas": user.has_perm("saga.view_sagainstance"),
        "outbox": user.has_perm("saga.view_outboxmessage"),
        "dead_letters": user.has_perm("saga.view_deadletter"),
    }
    if not any(shown.values()):
        return {"shown": False}
    now = timezone.now()
    result: dict[str, Any] = {"shown": True, "now": timestamp(now), **{f"show_{k}": v for k, v in shown.items()}}
    problems = 0
    if shown["sagas"]:
        sagas_url = reverse("admin:saga_sagainstance_changelist")
        hour = _counts(now - timedelta(hours=1))
        day = _counts(now - timedelta(days=1))
        every = _counts(None)
        result["statuses"] = [
            {
                "status": status,
                "cells": [
                    (counts.get(status, 0), _url(sagas_url, status__exact=status, started=period))
                    for counts, period in ((hour, "1h"), (day, "24h"), (every, ""))
                ],
            }
            for status in SagaStatus.values
        ]
        stuck = SagaInstance.objects.filter(saga_stuck_q(now))
        result["stuck_count"] = stuck.count()
        result["stuck_url"] = _url(sagas_url, stuck="yes")
        result["stuck"] = [
            {
                "id": short_id(saga.id),
                "url": reverse("admin:saga_sagainstance_change", args=[saga.pk]),
                "type": saga.type,
                "status": saga.status,
                "step": saga.current_step,
                "quiet": age(saga.updated_at, now),
            }
            for saga in stuck.order_by("updated_at")[:5]
        ]
        result["failed_count"] = SagaInstance.objects.filter(saga_needs_operator_q()).count()
        result["failed_url"] = _url(sagas_url, status__exact=SagaStatus.FAILED, resolved="no")
        result["retrying_count"] = SagaInstance.objects.filter(saga_retrying_long_q()).count()
        result["retrying_attempts"] = saga_settings.SAGA_LONG_RETRY_ATTEMPTS
        result["retrying_url"] = _url(sagas_url, retrying="yes")
        problems += result["stuck_count"] + result["failed_count"] + result["retrying_count"]
    if shown["outbox"]:
        unsent = OutboxMessage.objects.filter(sent_at__isnull=True).aggregate(n=Count("pk"), oldest=Min("created_at"))
        result["unsent"] = unsent["n"]
        result["lag"] = duration(outbox_lag_seconds()) if unsent["n"] else "0 s"
        result["oldest_unsent"] = timestamp(unsent["oldest"]) if unsent["oldest"] else ""
        result["outbox_url"] = _url(reverse("admin:saga_outboxmessage_changelist"), sent_at__isempty="1")
    if shown["dead_letters"]:
        result["dead_open"] = DeadLetter.objects.filter(resolution="").count()
        result["dead_total"] = DeadLetter.objects.count()
        result["dead_url"] = _url(reverse("admin:saga_deadletter_changelist"), state="open")
        problems += result["dead_open"]
    result["problems"] = problems
    return result


def _counts(since: datetime | None) -> dict[str, int]:
    sagas = SagaInstance.objects.all() if since is None else SagaInstance.objects.filter(created_at__gte=since)
    return dict(sagas.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))


def _url(base: str, **params: str) -> str:
    query = {key: value for key, value in params.items() if value}
    return f"{base}?{urlencode(query)}" if query else base
