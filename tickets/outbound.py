"""Outgoing HTTP for callbacks and webhooks, with the safety rules of one place:
http/https only, an optional allow-list of hosts, no redirects, a connect/read
timeout and a cap on how much of an answer is read."""
from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings


class OutboundRefused(Exception):
    """The URL may not be called (scheme or host not allowed)."""


@dataclass
class Answer:
    status: int
    body: bytes
    truncated: bool


def sign(secret: str, body: bytes) -> str:
    """``sha256=<hex HMAC-SHA256 of the raw body>`` as sent in X-Orderly-Signature."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundRefused("only http and https URLs are called")
    allowed = [h.lower() for h in settings.ORDERLY_OUTBOUND_ALLOWED_HOSTS]
    if allowed and parts.hostname.lower() not in allowed:
        raise OutboundRefused(f"host {parts.hostname} is not in ORDERLY_OUTBOUND_ALLOWED_HOSTS")


def post_json(url: str, body: bytes, *, secret: str = "", timeout: float) -> Answer:
    """POST a JSON body; raises OutboundRefused or requests.RequestException."""
    check_url(url)
    headers = {"Content-Type": "application/json", "User-Agent": "Orderly/1"}
    if secret:
        headers["X-Orderly-Signature"] = sign(secret, body)
    cap = settings.ORDERLY_OUTBOUND_MAX_RESPONSE_BYTES
    # requests' timeout bounds each wait, not the whole call: an endpoint that
    # drips its answer could hold a worker for ever. Read in chunks against
    # one deadline, so a call ends within about twice ``timeout``.
    deadline = time.monotonic() + timeout
    with requests.post(url, data=body, headers=headers, timeout=timeout,
                       allow_redirects=False, stream=True) as response:
        chunks: list[bytes] = []
        size = 0
        while size <= cap:
            chunk = response.raw.read1(min(8192, cap + 1 - size), decode_content=True)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if time.monotonic() > deadline:
                raise requests.Timeout(f"the answer took longer than {timeout} s")
        raw = b"".join(chunks)
        return Answer(status=response.status_code, body=raw[:cap], truncated=len(raw) > cap)
