#!/usr/bin/env python3
"""Lock / resolve / hand-over under contention over HTTP (stdlib only).

    transitions.py --base-url URL --token TOKEN --op lock|resolve|handover \\
        --ids 1,2,3 [-c 8] [--per-ticket 2] [--requests 400] [--label L] [--json-out F]

lock:     every request locks one of the given tickets (picked at random), so
          the c clients keep queueing on the same few row locks; all answer 200.
resolve / handover: each ticket is sent --per-ticket times back to back, so
          that that many clients race for it: one 200 and the rest 409.
Latency percentiles are over every answer (a 409 is a correct answer here);
anything other than 200/409 counts as a failure.
"""
from __future__ import annotations

import argparse
import http.client
import json
import random
import statistics
import threading
import time
import urllib.parse


def pct(xs, p):
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100.0
    f = int(k)
    c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--op", choices=["lock", "resolve", "handover"], required=True)
    ap.add_argument("--ids", required=True, help="comma-separated ticket ids")
    ap.add_argument("-c", "--concurrency", type=int, default=8)
    ap.add_argument("--per-ticket", type=int, default=2)
    ap.add_argument("-n", "--requests", type=int, default=400, help="lock only")
    ap.add_argument("--label", default="")
    ap.add_argument("--json-out")
    a = ap.parse_args()

    ids = [int(x) for x in a.ids.split(",") if x]
    if a.op == "lock":
        rng = random.Random(3)
        jobs = [rng.choice(ids) for _ in range(a.requests)]
        body = {"minutes": 5}
    else:
        jobs = [i for i in ids for _ in range(a.per_ticket)]
        body = {"result": "done"} if a.op == "resolve" else {"reason": "not mine"}
    payload = json.dumps(body).encode()
    u = urllib.parse.urlsplit(a.base_url)
    headers = {"Authorization": f"Token {a.token}", "Content-Type": "application/json",
               "Accept": "application/json"}
    lock = threading.Lock()
    pos = [0]
    lat: list[float] = []
    statuses: dict[int, int] = {}

    def worker():
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
        while True:
            with lock:
                if pos[0] >= len(jobs):
                    break
                tid = jobs[pos[0]]
                pos[0] += 1
            t0 = time.perf_counter()
            try:
                conn.request("POST", f"/api/v1/tickets/{tid}/{a.op}/", body=payload,
                             headers=headers)
                resp = conn.getresponse()
                resp.read()
                st = resp.status
            except Exception:  # noqa: BLE001 - transport error counts as a failure
                st = 0
                conn.close()
                conn = http.client.HTTPConnection(u.hostname, u.port, timeout=120)
            dt = time.perf_counter() - t0
            with lock:
                lat.append(dt)
                statuses[st] = statuses.get(st, 0) + 1
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(a.concurrency)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    lat.sort()
    ms = lambda x: round(x * 1000, 2)  # noqa: E731
    ok = statuses.get(200, 0)
    conflicts = statuses.get(409, 0)
    res = {
        "label": a.label, "op": a.op, "concurrency": a.concurrency, "requests": len(lat),
        "ok": ok, "conflicts": conflicts, "failures": len(lat) - ok - conflicts,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "wall_s": round(wall, 3), "rps": round(len(lat) / wall, 2),
        "p50_ms": ms(pct(lat, 50)), "p95_ms": ms(pct(lat, 95)), "p99_ms": ms(pct(lat, 99)),
        "mean_ms": ms(statistics.fmean(lat)), "max_ms": ms(lat[-1]),
        "ts": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    print(f"[{a.label}] {a.op} c={a.concurrency} n={len(lat)} 200={ok} 409={conflicts} "
          f"fail={res['failures']} p50={res['p50_ms']}ms p99={res['p99_ms']}ms")
    if a.json_out:
        with open(a.json_out, "a") as f:
            f.write(json.dumps(res) + "\n")
    return 0 if res["failures"] == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main())
