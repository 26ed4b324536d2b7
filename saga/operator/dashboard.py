"""The dashboard on the admin index: sagas per status in the last hour and day, the sagas that
need a look (failed, stuck, retrying long), the outbox's backlog and the dead letters, each
linking to the admin list that shows them. A user sees the parts whose models they may view."""

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from django.db.models import Count, Min
from django.urls import reverse
from django.utils import timezone

from saga.core.conf import saga_settings
from saga.messaging.relay import outbox_lag_seconds
from saga.models import DeadLetter, OutboxMessage, SagaInstance, SagaStatus
from saga.operator.display import age, duration, short_id, timestamp
from saga.selectors import saga_needs_operator_q, saga_retrying_long_q, saga_stuck_q


def dashboard(user: Any) -> dict[str, Any]:
    """The dashboard's figures and links, as its template (saga/admin/dashboard.html) shows them."""
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
        result |= _sagas(now)
        problems += result["stuck_count"] + result["failed_count"] + result["retrying_count"]
    if shown["outbox"]:
        result |= _outbox()
    if shown["dead_letters"]:
        result |= _dead_letters()
        problems += result["dead_open"]
    result["problems"] = problems
    return result


def _sagas(now: datetime) -> dict[str, Any]:
    """Sagas per status started in the last hour, day and ever; the failed, stuck and retrying ones."""
    sagas_url = reverse("admin:saga_sagainstance_changelist")
    hour = _counts(now - timedelta(hours=1))
    day = _counts(now - timedelta(days=1))
    every = _counts(None)
    statuses = [
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
    return {
        "statuses": statuses,
        "stuck_count": stuck.count(),
        "stuck_url": _url(sagas_url, stuck="yes"),
        "stuck": [_stuck(saga, now) for saga in stuck.order_by("updated_at")[:5]],
        "failed_count": SagaInstance.objects.filter(saga_needs_operator_q()).count(),
        "failed_url": _url(sagas_url, status__exact=SagaStatus.FAILED, resolved="no"),
        "retrying_count": SagaInstance.objects.filter(saga_retrying_long_q()).count(),
        "retrying_attempts": saga_settings.SAGA_LONG_RETRY_ATTEMPTS,
        "retrying_url": _url(sagas_url, retrying="yes"),
    }


def _stuck(saga: SagaInstance, now: datetime) -> dict[str, Any]:
    return {
        "id": short_id(saga.id),
        "url": reverse("admin:saga_sagainstance_change", args=[saga.pk]),
        "type": saga.type,
        "status": saga.status,
        "step": saga.current_step,
        "quiet": age(saga.updated_at, now),
    }


def _outbox() -> dict[str, Any]:
    """The messages the relay has not sent yet, and how far behind it is."""
    unsent = OutboxMessage.objects.filter(sent_at__isnull=True).aggregate(n=Count("pk"), oldest=Min("created_at"))
    return {
        "unsent": unsent["n"],
        "lag": duration(outbox_lag_seconds()) if unsent["n"] else "0 s",
        "oldest_unsent": timestamp(unsent["oldest"]) if unsent["oldest"] else "",
        "outbox_url": _url(reverse("admin:saga_outboxmessage_changelist"), sent_at__isempty="1"),
    }


def _dead_letters() -> dict[str, Any]:
    return {
        "dead_open": DeadLetter.objects.filter(resolution="").count(),
        "dead_total": DeadLetter.objects.count(),
        "dead_url": _url(reverse("admin:saga_deadletter_changelist"), state="open"),
    }


def _counts(since: datetime | None) -> dict[str, int]:
    sagas = SagaInstance.objects.all() if since is None else SagaInstance.objects.filter(created_at__gte=since)
    return dict(sagas.values_list("status").annotate(n=Count("pk")).values_list("status", "n"))


def _url(base: str, **params: str) -> str:
    query = {key: value for key, value in params.items() if value}
    return f"{base}?{urlencode(query)}" if query else base
