"""Refuse request bodies over the limit before anything reads them (413)."""
from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse


class BodySizeLimitMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        if length > settings.ORDERLY_MAX_BODY_BYTES:
            return JsonResponse(
                {"code": "too_large",
                 "detail": f"The request body is larger than {settings.ORDERLY_MAX_BODY_BYTES} bytes."},
                status=413,
            )
        return self.get_response(request)
