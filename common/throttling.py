"""Rate limits: DRF's scoped throttling of creating requests, counted atomically in Django's cache.
Imports no DRF views: DRF loads throttle classes while it is still loading itself."""

import logging
import math
import time
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from django.core.cache import DEFAULT_CACHE_ALIAS, BaseCache, caches
from django.core.exceptions import ImproperlyConfigured
from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle

if TYPE_CHECKING:
    from rest_framework.request import Request
    from rest_framework.views import APIView

logger = logging.getLogger(__name__)

# After the cache failed, the limit is not applied for this long: each try would hold a request for
# the cache's timeout (a frozen Redis answers nothing).
CACHE_PAUSE_SECONDS = 5.0
# Per cache object (this process' connections to it; a new one starts afresh): until when not to try it.
_unreachable_until: WeakKeyDictionary[BaseCache, float] = WeakKeyDictionary()


class ScopedCreateThrottle(ScopedRateThrottle):
    """Limits how often one user (one token; a client's address when anonymous) creates through
    a view that names a `throttle_scope`. Only the view's `create` action counts (POST to its
    collection): reads and the other actions stay free. The rate is
    REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope] ("100/s", "30/min"; None turns the scope off),
    read on every request, not once at import as DRF's own throttles do.

    Counting is a fixed window per user kept with the cache's atomic add and incr (Redis INCR in
    production), so concurrent requests on several gunicorn workers cannot slip past the limit, as
    they can with SimpleRateThrottle's read-modify-write history. When the cache cannot be reached
    the request is let through, and logged, and the cache is not tried again for a few seconds: a
    rate limit must not take order placement down with it, nor slow it down.
    """

    def allow_request(self, request: "Request", view: "APIView") -> bool:
        if getattr(view, "action", None) != "create":
            return True
        self.scope = getattr(view, self.scope_attr, None)
        if not self.scope:
            return True
        self.rate = self.get_rate()
        self.num_requests, self.duration = self.parse_rate(self.rate)
        if self.num_requests is None or self.duration is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_ends = (window + 1) * self.duration
        key = f"{self.key}_{window}"
        counters = caches[DEFAULT_CACHE_ALIAS]
        if time.monotonic() < _unreachable_until.get(counters, 0.0):
            return True
        try:
            # The counter outlives its window, so incr never finds it expired while the window is current.
            counters.add(key, 0, timeout=2 * self.duration)
            count = counters.incr(key)
        except Exception as error:  # noqa: BLE001 - any cache failure: let the request through, and say so
            _unreachable_until[counters] = time.monotonic() + CACHE_PAUSE_SECONDS
            logger.warning(
                "rate limit %s not applied for %.0f s: the cache is unreachable: %r",
                self.scope,
                CACHE_PAUSE_SECONDS,
                error,
            )
            return True
        return count <= self.num_requests

    def get_rate(self) -> str | None:
        rates = api_settings.DEFAULT_THROTTLE_RATES
        if self.scope not in rates:
            raise ImproperlyConfigured(f"No throttle rate for the scope {self.scope!r} in DEFAULT_THROTTLE_RATES.")
        rate = rates[self.scope]
        return None if rate is None else str(rate)

    def wait(self) -> float:
        """Seconds until the current window ends (DRF sends them as Retry-After)."""
        return max(1, math.ceil(self.window_ends - self.timer()))
