"""A small local endpoint for trying the callback flow and webhooks.

    python manage.py orderly_receiver --port 9009 --secret demo-secret

POST /callback answers a ticket's callback: ``resolved`` when the ticket's
title contains "auto" (case-insensitive), else ``needs_agent``; /fail answers
500. POST /webhook logs the event. Every request's X-Orderly-Signature is
checked against --secret and the verdict logged. For demos only: it serves
on 127.0.0.1.
"""
from __future__ import annotations

import hashlib
import hmac
import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.core.management.base import BaseCommand


def make_handler(secret: str, write):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, fmt, *args):  # quiet default access log
            return

        def _answer(self, status: int, body: dict) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_POST(self):  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(min(length, 1024 * 1024))
            given = self.headers.get("X-Orderly-Signature", "")
            expected = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
            signed = "valid" if secret and hmac.compare_digest(given, expected) else (
                "missing" if not given else "INVALID")
            try:
                body = json.loads(raw or b"{}")
            except ValueError:
                body = {}
            ticket = body.get("ticket") or {}
            if self.path.startswith("/webhook"):
                write(f"webhook {body.get('event')} for #{ticket.get('id')} "
                      f"(state {ticket.get('state')}), signature {signed}")
                return self._answer(200, {"ok": True})
            if self.path.startswith("/fail"):
                write(f"callback for #{ticket.get('id')}: answering 500, signature {signed}")
                return self._answer(500, {"error": "failing on purpose"})
            if "auto" in str(ticket.get("title", "")).lower():
                write(f"callback for #{ticket.get('id')}: resolved, signature {signed}")
                return self._answer(200, {"outcome": "resolved",
                                          "result": "Done automatically by the receiver."})
            write(f"callback for #{ticket.get('id')}: needs an agent, signature {signed}")
            return self._answer(200, {"outcome": "needs_agent",
                                      "note": "The receiver could not do this alone."})

    return Handler


class Command(BaseCommand):
    help = "Serve a local callback/webhook endpoint for demos (127.0.0.1 only)."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=9009)
        parser.add_argument("--secret", default="demo-secret")

    def handle(self, *args, port: int, secret: str, **options):
        def write(line: str) -> None:
            self.stdout.write(line)
            self.stdout.flush()

        server = ThreadingHTTPServer(("127.0.0.1", port), make_handler(secret, write))
        write(f"receiver on http://127.0.0.1:{port}/ (callback: /callback, webhook: /webhook)")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
