"""The demo receiver answers callbacks by title and checks signatures."""
import json
import threading
from http.server import ThreadingHTTPServer

import requests

from tickets.management.commands.orderly_receiver import make_handler
from tickets.outbound import sign


def _serve(secret):
    lines = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(secret, lines.append))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, lines


def _post(server, path, body, secret):
    raw = json.dumps(body).encode()
    url = f"http://127.0.0.1:{server.server_address[1]}{path}"
    return requests.post(url, data=raw, timeout=5,
                         headers={"X-Orderly-Signature": sign(secret, raw)})


def test_auto_titles_are_resolved_others_need_an_agent():
    server, lines = _serve("s3")
    try:
        resolved = _post(server, "/callback", {"ticket": {"id": 1, "title": "Auto refund"}}, "s3")
        needs = _post(server, "/callback", {"ticket": {"id": 2, "title": "Refund"}}, "s3")
        failing = _post(server, "/fail", {"ticket": {"id": 3, "title": "x"}}, "s3")
    finally:
        server.shutdown()
    assert resolved.json()["outcome"] == "resolved"
    assert needs.json()["outcome"] == "needs_agent"
    assert failing.status_code == 500
    assert all("signature valid" in line for line in lines)


def test_a_wrong_signature_is_reported():
    server, lines = _serve("right")
    try:
        _post(server, "/webhook", {"event": "created", "ticket": {"id": 1}}, "wrong")
    finally:
        server.shutdown()
    assert lines == ["webhook created for #1 (state None), signature INVALID"]


def test_an_answer_dripped_past_the_deadline_is_a_timeout(settings):
    """requests' timeout is per read; outbound enforces one deadline for the answer."""
    import time
    from http.server import BaseHTTPRequestHandler

    import pytest

    from tickets.outbound import post_json

    class Drip(BaseHTTPRequestHandler):
        def log_message(self, *args):
            return

        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Length", "100")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b" ")
                self.wfile.flush()
                time.sleep(0.05)

    settings.ORDERLY_OUTBOUND_MAX_RESPONSE_BYTES = 4096
    server = ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    started = time.monotonic()
    try:
        with pytest.raises(requests.Timeout):
            post_json(f"http://127.0.0.1:{server.server_address[1]}/", b"{}", timeout=1)
    finally:
        server.shutdown()
    assert time.monotonic() - started < 3
