"""What every admin page of the ledger shares: times to the millisecond, durations and ages in
words, shortened text, colored status badges, and a read-only base class.

A public piece of the engine: a project's own admin builds on it (the shop's in common/admin.py),
so every page of the admin shows a time, an id and a status the same way. It knows the engine's
statuses only; a project colors its own with `badge(status, colors=...)` and the colors below.
"""

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

__all__ = [
    "AMBER",
    "BLUE",
    "GREEN",
    "GREY",
    "PURPLE",
    "RED",
    "SAGA_COLORS",
    "LedgerAdmin",
    "ReadOnly",
    "age",
    "badge",
    "breakable",
    "duration",
    "ms_field",
    "short_id",
    "shorten",
    "timestamp",
]

# Status colors (text on a light background): green done, red failed, amber refused or undoing,
# blue in hand, purple waiting on someone else, grey undone or left out.
GREEN, RED, AMBER, BLUE, PURPLE, GREY = "#1e6b34", "#b3261e", "#8a5300", "#1a5fa8", "#5b3fa8", "#5f6368"
SAGA_COLORS = {
    # sagas
    "STARTED": BLUE,
    "WAITING": PURPLE,
    "COMPENSATING": AMBER,
    "COMPLETED": GREEN,
    "COMPENSATED": GREY,
    "FAILED": RED,
    # steps
    "RUNNING": BLUE,
    "SENT": PURPLE,
    "SUCCEEDED": GREEN,
    "REFUSED": AMBER,
    "CRASHED": RED,
    "SKIPPED": GREY,
    "ABANDONED": GREY,
}


def timestamp(moment: datetime | None) -> str:
    """UTC, to the millisecond: 2026-11-28 22:46:03.512."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def duration(seconds: float | timedelta | None) -> str:
    """12 ms, 1.25 s, 3 min 4 s, 2 h 5 min, 3 d 4 h."""
    if seconds is None:
        return "-"
    if isinstance(seconds, timedelta):
        seconds = seconds.total_seconds()
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def age(moment: datetime | None, now: datetime | None = None) -> str:
    """How long ago, in words: to the second under an hour (7 min 3 s), coarser after (1 h 35 min)."""
    if moment is None:
        return "-"
    return duration(max(((now or timezone.now()) - moment).total_seconds(), 0))


def shorten(text: str, length: int = 60) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= length else text[: length - 1] + "…"


def badge(
    status: str, label: str | None = None, *, colors: Mapping[str, str] = SAGA_COLORS, muted: bool = False
) -> SafeString:
    """A status pill in its color from `colors` (grey when it has none), styled inline so it looks
    the same on every admin page."""
    color = colors.get(status, GREY)
    look = f"color:{color};border:1px solid {color}" if muted else f"background:{color};color:#fff"
    return format_html(
        '<span class="saga-badge" style="display:inline-block;padding:1px 8px;border-radius:10px;font-size:11px;'
        'font-weight:600;letter-spacing:.02em;white-space:nowrap;line-height:1.5;{}">{}</span>',
        look,
        label or status,
    )


def breakable(name: str) -> SafeString:
    """A snake_case name that may wrap after its underscores in a narrow column."""
    return format_html_join(mark_safe("_<wbr>"), "{}", ((part,) for part in name.split("_")))


def short_id(value: Any) -> str:
    return str(value)[:8]


def ms_field(name: str, description: str | None = None) -> Any:
    """A list or read-only column showing the datetime field `name` to the millisecond."""

    @admin.display(description=description or name.replace("_", " "), ordering=name)
    def show(self: Any, obj: Model) -> str:
        return timestamp(getattr(obj, name))

    show.__name__ = f"{name}_ms"
    return show


class ReadOnly:
    """An admin (or inline) that shows its rows and never adds, changes or deletes one."""

    def has_add_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


class LedgerAdmin(ReadOnly, admin.ModelAdmin):
    """A record of the ledger: shown, never added, changed or deleted by hand. State changes go
    through the services (the API, the saga engine, the operator actions)."""
