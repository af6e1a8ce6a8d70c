#!/usr/bin/env python3
"""Orderly beside the peer: medians over runs, as a markdown table, with ratios.

    python3 bench/compare.py [--peer-results /tmp/dh-results]

Reads bench/results/<db>.jsonl (Orderly), bench/results/peer-<db>.jsonl (the
peer's creation measured run by run beside Orderly's, `run.py --peer-create`)
and the peer harness's own results (<peer-results>/<db>.jsonl and
querycount-<db>.jsonl). Runs with failures are left out of the medians.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
DBS = ("sqlite", "pg")


def lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def f(x, nd=1):
    if x is None:
        return "–"
    if isinstance(x, str):
        return x
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if abs(x) >= 100:
        return f"{x:.0f}"
    return f"{x:.{nd}f}"


def server_cpu(r: dict) -> float:
    return sum(v for k, v in r.get("cpu_ms_per_req", {}).items() if k != "client")


SINCE = ""


def http_rows(rows: list[dict], label: str, since: str = "") -> list[dict]:
    return [r for r in rows if r.get("label") == label and not r.get("failures")
            and r.get("ts", "") >= since]


def summary(rows: list[dict]) -> dict:
    return {"n": len(rows), "rps": med([r["rps"] for r in rows]),
            "p50": med([r["p50_ms"] for r in rows]), "p99": med([r["p99_ms"] for r in rows]),
            "cpu": med([server_cpu(r) for r in rows])}


def ratio(a, b):
    return f"{a / b:.1f}×" if a and b else "–"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--peer-results", default="/tmp/dh-results")
    ap.add_argument("--create-since", default="",
                    help="only creation runs from this time on (ISO, e.g. 2026-11-25T12:27)")
    a = ap.parse_args()
    global SINCE
    SINCE = a.create_since
    peer_dir = Path(a.peer_results)
    print("| db | scenario | Orderly | peer (django-helpdesk) | ratio |")
    print("|---|---|---|---|---|")
    for db in DBS:
        ours = lines(RESULTS / f"{db}.jsonl")
        if not ours:
            continue
        peer_side = lines(RESULTS / f"peer-{db}.jsonl")
        peer_harness = lines(peer_dir / f"{db}.jsonl")
        peer_q = {r["op"]: r for r in lines(peer_dir / f"querycount-{db}.jsonl")
                  if r.get("tickets", 0) <= 20_000}
        our_q: dict[tuple[int, str], dict] = {}
        for r in ours:
            if r.get("kind") == "queries":
                our_q[(r["tickets"], r["op"])] = r
        create_q = [r["queries"] for (n, op), r in our_q.items() if op == "create"]

        for c in (1, 8):
            o = summary(http_rows(ours, f"{db}|create|c{c}", SINCE))
            p = summary(http_rows(peer_side, f"{db}|create|c{c}", SINCE)
                        or http_rows(peer_harness, f"{db}|create|c{c}"))
            # Each Orderly run was followed at once by the peer's (--peer-create):
            # the ratio is the median of those pairs, so that a machine whose
            # load changes between runs does not skew it.
            pairs = [oa["rps"] / pa["rps"] for oa, pa in zip(
                http_rows(ours, f"{db}|create|c{c}", SINCE),
                http_rows(peer_side, f"{db}|create|c{c}", SINCE))]
            paired = f"{med(pairs):.1f}× (paired runs: {', '.join(f'{x:.1f}' for x in pairs)})" \
                if pairs else ratio(o["rps"], p["rps"])
            print(f"| {db} | create c{c}: req/s | {f(o['rps'])} | {f(p['rps'])} | {paired} |")
            print(f"| {db} | create c{c}: p50 / p99 ms | {f(o['p50'])} / {f(o['p99'])} | "
                  f"{f(p['p50'])} / {f(p['p99'])} | |")
            print(f"| {db} | create c{c}: server CPU ms/req | {f(o['cpu'])} | {f(p['cpu'])} | "
                  f"{ratio(p['cpu'], o['cpu'])} less |")
        pq = peer_q.get("api_create", {}).get("queries")
        print(f"| {db} | create: queries/request | {f(max(create_q) if create_q else None, 0)} | "
              f"{f(pq, 0)} | |")

        sizes = sorted({n for n, _ in our_q})
        for size in sizes:
            for op, peer_op in (("list_agent", "api_list"), ("detail", None)):
                o = summary([r for r in ours if r.get("label", "").startswith(f"{db}|")
                             and r.get("label", "").endswith(f"|api_{op.split('_')[0]}")
                             and r.get("kind") == "http" and _size_of(r, ours) == size
                             and not r.get("failures")])
                p = summary(http_rows(peer_harness, f"{db}|10k|{peer_op}")) if (
                    peer_op and size <= 20_000) else summary([])
                q = our_q.get((size, op), {}).get("queries")
                qp = peer_q.get(peer_op, {}).get("queries") if peer_op and size <= 20_000 else None
                print(f"| {db} | {op.split('_')[0]} at ~{size:,}: p50 / p99 ms, queries | "
                      f"{f(o['p50'])} / {f(o['p99'])}, {f(q, 0)} q | "
                      f"{f(p['p50'])} / {f(p['p99'])}, {f(qp, 0)} q | "
                      f"{ratio(p['p50'], o['p50'])} |")

        for op in ("lock", "resolve", "handover"):
            rs = [r for r in ours if r.get("kind") == "transition" and r["op"] == op]
            p99 = med([r["p99_ms"] for r in rs])
            p50 = med([r["p50_ms"] for r in rs])
            bad = sum(r["failures"] for r in rs)
            print(f"| {db} | {op} c8 under contention: p50 / p99 ms | {f(p50)} / {f(p99)} "
                  f"({bad} failures) | | |")
        pp = summary(http_rows(peer_harness, f"{db}|10k|api_patch_owner_status|c8"))
        if pp["n"]:
            print(f"| {db} | peer's PATCH owner+status at 10k, c8: p50 / p99 ms | | "
                  f"{f(pp['p50'])} / {f(pp['p99'])} | |")

        for r in [r for r in ours if r.get("kind") == "dispatch"]:
            v = r["violations"]
            clean = not (v["assigned_twice"] or v["over_capacity"] or v["load_mismatch"]
                         or v["left_in_pool"])
            print(f"| {db} | dispatch 10,000 → 200×50, {r['dispatchers']} dispatcher(s): "
                  f"assignments/s | {f(r['assignments_per_s'])} "
                  f"({'zero violations' if clean else v}) | – | |")
        for r in [r for r in ours if r.get("kind") == "sweep"]:
            print(f"| {db} | sweep {r['sweep']} at {r['open_tickets']:,} open, {r['due']:,} due | "
                  f"{r['s']} s ({r['ms_per_ticket']} ms/ticket), "
                  f"{'index' if r['index_scan'] else 'NO index'} | – | |")


def _size_of(row: dict, rows: list[dict]) -> int:
    """The ticket count a read was measured at: the last load before it."""
    size = 0
    for r in rows:
        if r is row:
            return size
        if r.get("kind") == "load":
            size = r["tickets"]
    return size


if __name__ == "__main__":
    main()
