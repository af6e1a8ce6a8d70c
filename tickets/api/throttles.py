"""Rate limits on sign-in and ticket creation (429 ``throttled``).

Rates come from ``ORDERLY_THROTTLE_SIGNIN`` and ``ORDERLY_THROTTLE_CREATE``
("<n>/<second|minute|hour|day>", or "off"), read at request time so tests and
deployments can change them. Counters live in Django's cache: per process
with the default local-memory cache, shared with ``ORDERLY_CACHE_URL``.
"""
from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class _SettingRateThrottle(SimpleRateThrottle):
    setting_name = ""

    def __init__(self) -> None:  # the rate is read per request, not at import
        pass

    def allow_request(self, request, view) -> bool:
        rate = getattr(settings, self.setting_name, None)
        if not rate or str(rate).lower() == "off":
            return True
        self.rate = rate
        self.num_requests, self.duration = self.parse_rate(rate)
        return super().allow_request(request, view)


class SignInThrottle(_SettingRateThrottle):
    """Per client address: sign-in is anonymous by nature."""

    scope = "signin"
    setting_name = "ORDERLY_THROTTLE_SIGNIN"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class CreateThrottle(_SettingRateThrottle):
    """Per user, on ticket creation only (POST)."""

    scope = "create"
    setting_name = "ORDERLY_THROTTLE_CREATE"

    def allow_request(self, request, view) -> bool:
        if request.method != "POST":
            return True
        return super().allow_request(request, view)

    def get_cache_key(self, request, view) -> str:
        ident = request.user.pk if request.user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
