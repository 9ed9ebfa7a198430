"""Serving under long load (issue 10): one-connection tails, a request-count soak with RSS, stock vs portrait.

Run: ``flock /tmp/portrait/bench.lock .venv/bin/python -m benchmarks.serving_soak``
(defaults are the issue's: 5-minute one-connection runs, a 1,000,000-request soak;
``--minutes``/``--soak-requests``/``--soak-minutes`` shorten them, and the report says
what was run).

For each configuration, one ``bentoml serve serving.service:Portrait`` worker on
127.0.0.1 over the same world:

* **portrait**: what ``portrait serve`` starts (OTel SDK off and tracing excluded,
  metrics and access log off, BentoML's timeout timers cancelled, gc.freeze() after
  the models load, young-generation threshold 50,000, OpenMP passive);
* **observability**: portrait's knobs but BentoML's tracing and Prometheus metrics
  turned back on (``portrait serve --tracing --metrics``): what they cost;
* **stock**: BentoML's defaults (tracing middleware live, metrics, access log,
  60 s timer per request, CPython's collector thresholds).

Per configuration: one wrk connection on ``/noop`` (the anchor), ``/recommend`` and
``/score``; 16 connections on each; then a soak on ``/recommend`` in 30 s wrk chunks
until the request count (or the time bound) is reached, with the worker's RSS after
every chunk. Targets: one connection p99 <= 10 ms and p50 <= 1.5x the no-op's;
soak RSS growth <= 50 MB from the 100,000th request on, zero errors.
Load tool: wrk (see benchmarks/serving.py); every target is 127.0.0.1.
"""

from __future__ import annotations

import argparse
import time

from benchmarks._report import write_section
from benchmarks._serving_run import HEADER, Server, make_world, row, rss_mb, wrk

COMMAND = "flock /tmp/portrait/bench.lock .venv/bin/python -m benchmarks.serving_soak"


def soak(server: Server, ids: list[str], requests: int, max_minutes: float, conns: int) -> dict:
    """``/recommend`` in 30 s chunks until ``requests`` (or the time bound); RSS after each chunk."""
    pid = server.worker_pid()
    samples = [(0, rss_mb(pid))]
    done, errors, t0 = 0, 0, time.monotonic()
    p99s = []
    while done < requests and time.monotonic() - t0 < max_minutes * 60:
        r = wrk(server.base, "recommend", ids, 30, conns)
        done += r["requests"]
        errors += r["errors"]
        p99s.append(r["p99"])
        samples.append((done, rss_mb(pid)))
        print(f"  soak: {done:,} requests, RSS {samples[-1][1]:.1f} MB, chunk p99 {r['p99']:.2f} ms, "
              f"errors {errors}", flush=True)
    after = [s for s in samples if s[0] >= 100_000]
    growth = (after[-1][1] - after[0][1]) if len(after) >= 2 else None
    per_req = ((samples[-1][1] - samples[1][1]) * 2**20 / max(samples[-1][0] - samples[1][0], 1)
               if len(samples) > 2 else None)
    return {"requests": done, "errors": errors, "seconds": time.monotonic() - t0, "samples": samples,
            "growth_after_100k": growth, "bytes_per_request": per_req, "max_chunk_p99": max(p99s) if p99s else None}


def run_config(name: str, world, args) -> dict:  # noqa: ANN001
    stock = name != "portrait"  # stock and observability runs are capped in time (see --stock-minutes)
    observe = name == "observability"
    server = Server(world.data_dir, world.uri, stock=name == "stock", tracing=observe, metrics=observe)
    try:
        server.wait_ready()
        knobs = server.status()["runtime"]
        print(f"== {name}: knobs {knobs}", flush=True)
        for ep in ("noop", "recommend", "score"):
            wrk(server.base, ep, world.one_ids, 3, 1)
        minutes = args.minutes if not stock else min(args.minutes, args.stock_minutes)
        one = {ep: wrk(server.base, ep, world.one_ids, minutes * 60, 1) for ep in ("noop", "recommend", "score")}
        for r in one.values():
            print(" ", row(r), flush=True)
        many = {ep: wrk(server.base, ep, world.one_ids, args.many_seconds, 16) for ep in ("noop", "recommend", "score")}
        for r in many.values():
            print(" ", row(r), flush=True)
        soak_minutes = args.soak_minutes if not stock else min(args.soak_minutes, args.stock_soak_minutes)
        s = soak(server, world.one_ids, args.soak_requests, soak_minutes, args.soak_connections)
    finally:
        server.stop()
    return {"name": name, "one": one, "many": many, "soak": s, "minutes": minutes, "soak_minutes": soak_minutes,
            "knobs": knobs}


def report(results: list[dict], args, n_users: int) -> str:  # noqa: ANN001
    lines = [f"World: {n_users:,} customers, real models (LightGBM churn/ltv/propensity, EASE recommender bundle) in a "
             f"temporary MLflow registry; one BentoML worker; wrk 4.1 on 127.0.0.1. Each configuration in the same "
             f"run, one after the other.", ""]
    for res in results:
        one, s = res["one"], res["soak"]
        base = one["noop"]["p50"]
        lines += [f"### {res['name']}", "",
                  f"One connection, {res['minutes']:g} min per endpoint; 16 connections, {args.many_seconds:g} s per "
                  f"endpoint.", "",
                  HEADER, *(row(r) for r in one.values()), *(row(r) for r in res["many"].values()), ""]
        for ep in ("recommend", "score"):
            r = one[ep]
            lines.append(f"- `/{ep}`: p99 {r['p99']:.2f} ms (target <= 10: {'met' if r['p99'] <= 10 else 'NOT met'}), "
                         f"p50 {r['p50'] / base:.2f}x the no-op's {base:.2f} ms "
                         f"(target <= 1.5x: {'met' if r['p50'] <= 1.5 * base else 'NOT met'})")
        g = s["growth_after_100k"]
        gtxt = f"{g:+.1f} MB" if g is not None else "n/a (fewer than 100,000 requests)"
        bpr = f"{s['bytes_per_request']:,.0f} B/request overall" if s["bytes_per_request"] is not None else ""
        lines += [f"- soak: {s['requests']:,} `/recommend` requests ({args.soak_connections} connections) in "
                  f"{s['seconds'] / 60:.1f} min (bound {res['soak_minutes']:g} min, target {args.soak_requests:,}), "
                  f"{s['errors']} errors; RSS growth from the 100,000th request: {gtxt} (target <= 50 MB); {bpr}; "
                  f"worst 30 s chunk p99 {s['max_chunk_p99']:.2f} ms",
                  "- RSS (MB) by requests served: " + ", ".join(f"{n:,}: {m:.1f}" for n, m in s["samples"]), ""]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--items", type=int, default=2_000)
    ap.add_argument("--minutes", type=float, default=5.0, help="one-connection run per endpoint (portrait)")
    ap.add_argument("--stock-minutes", type=float, default=1.0, help="cap for the stock/observability runs")
    ap.add_argument("--many-seconds", type=float, default=30.0, help="16-connection run per endpoint")
    ap.add_argument("--soak-requests", type=int, default=1_000_000)
    ap.add_argument("--soak-minutes", type=float, default=25.0, help="time bound of the soak")
    ap.add_argument("--stock-soak-minutes", type=float, default=5.0)
    ap.add_argument("--soak-connections", type=int, default=16)
    ap.add_argument("--configs", default="portrait,observability,stock")
    args = ap.parse_args()
    world = make_world(args.users, args.items)
    results = [run_config(name, world, args) for name in args.configs.split(",")]
    md = report(results, args, len(world.one_ids))
    cmd = COMMAND + " " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items())
    write_section("serving_soak", md, cmd)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
