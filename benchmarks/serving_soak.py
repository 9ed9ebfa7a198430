"""Serving under long load (issue 10): one-connection tails, a request-count soak with RSS, stock vs portrait.

Run: ``.venv/bin/python -m benchmarks.serving_soak``
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
import json
import time
from pathlib import Path

from benchmarks import _soak_state
from benchmarks._report import write_section
from benchmarks._serving_run import HEADER, Server, make_world, row, rss_mb, wrk

COMMAND = ".venv/bin/python -m benchmarks.serving_soak"


def soak(server, ids: list[str], requests: int, max_minutes: float, conns: int, state: dict | None = None) -> dict:
    """``/recommend`` in wrk chunks of at most 30 s until ``requests`` or this invocation's time bound;
    the worker's RSS after each chunk. ``state`` (from an earlier invocation on the same server) is continued."""
    pid = server.worker_pid()
    st = state or {"samples": [(0, rss_mb(pid))], "done": 0, "errors": 0, "p99s": [], "seconds": 0.0,
                   "invocations": 0}
    st["invocations"] += 1
    t0 = time.monotonic()
    while st["done"] < requests:
        left = max_minutes * 60 - (time.monotonic() - t0)
        if left < 5:
            break
        r = wrk(server.base, "recommend", ids, min(30, left), conns)
        st["done"] += r["requests"]
        st["errors"] += r["errors"]
        st["p99s"].append(r["p99"])
        st["samples"].append((st["done"], rss_mb(pid)))
        print(f"  soak: {st['done']:,} requests, RSS {st['samples'][-1][1]:.1f} MB, chunk p99 {r['p99']:.2f} ms, "
              f"errors {st['errors']}", flush=True)
    st["seconds"] += time.monotonic() - t0
    return st


def soak_summary(st: dict, conns: int, minutes: float) -> dict:
    samples = [tuple(x) for x in st["samples"]]
    after = [x for x in samples if x[0] >= 100_000]
    growth = (after[-1][1] - after[0][1]) if len(after) >= 2 else None
    per_req = ((samples[-1][1] - samples[1][1]) * 2**20 / max(samples[-1][0] - samples[1][0], 1)
               if len(samples) > 2 else None)
    return {"requests": st["done"], "errors": st["errors"], "seconds": st["seconds"], "samples": samples,
            "connections": conns, "minutes": minutes, "invocations": st["invocations"], "growth_after_100k": growth,
            "bytes_per_request": per_req, "max_chunk_p99": max(st["p99s"]) if st["p99s"] else None}


def run_soak(world, args, store: Path) -> dict:  # noqa: ANN001
    """The soak, resumable: when the request target is not reached within this invocation's bound, the server is
    left running (idle) and the next ``--part soak`` continues on it, up to ``--soak-total-minutes`` in all."""
    state_path = store / "soak_state.json"
    out: dict = {"part": "soak", "config": "portrait", "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    resumed = _soak_state.load(state_path) if state_path.exists() else None  # a stale file is dropped, unsignalled
    if resumed is not None:
        server, saved = resumed
        state = saved["state"]
        out["when"] = saved["when"] + " (resumed " + out["when"] + ")"
    else:
        srv = _server(world, "portrait")
        server, state = _soak_state.Attached.started(srv.base, srv.proc), None
        wrk(server.base, "recommend", world.one_ids, 3, 1)
    try:
        state = soak(server, world.one_ids, args.soak_requests, args.soak_minutes, args.soak_connections, state)
    except Exception:
        server.stop()
        state_path.unlink(missing_ok=True)
        raise
    done = state["done"] >= args.soak_requests or state["seconds"] >= args.soak_total_minutes * 60 - 10
    if not done and server.ident is None:  # no /proc: a later invocation could not prove the group ours
        print("soak cannot pause here (no process identity to re-attach by); stopping its server", flush=True)
        done = True
    if done:
        server.stop()
        state_path.unlink(missing_ok=True)
    else:
        state_path.write_text(json.dumps({**server.to_json(), "state": state, "when": out["when"]}))
        print(f"soak paused at {state['done']:,} requests; run `--part soak` again to continue", flush=True)
    out["soak"] = soak_summary(state, args.soak_connections, args.soak_total_minutes)
    out["soak"]["finished"] = done
    return out


PARTS = ("noop", "recommend", "score", "soak", "stock", "observability")


def forget_parts(store: Path) -> None:
    """``--fresh``: drop the measured parts, stopping a paused soak's server first (its state file is
    the only handle on that process; deleting it alone would leave the server running, orphaned).
    A stale state file (its process group no longer the server that wrote it) is dropped unsignalled."""
    state_path = store / "soak_state.json"
    resumed = _soak_state.load(state_path) if state_path.exists() else None
    if resumed is not None:
        resumed[0].stop()
    for f in store.glob("*.json"):
        f.unlink()


def _server(world, config: str) -> Server:  # noqa: ANN001
    observe = config == "observability"
    server = Server(world.data_dir, world.uri, stock=config == "stock", tracing=observe, metrics=observe)
    server.wait_ready()
    return server


def run_part(part: str, world, args) -> dict:  # noqa: ANN001
    """One invocation's share of the benchmark (each stays under 10 minutes on this machine)."""
    ids = world.one_ids
    config = part if part in ("stock", "observability") else "portrait"
    server = _server(world, config)
    out: dict = {"part": part, "config": config, "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    try:
        out["knobs"] = server.status()["runtime"]
        for ep in ("noop", "recommend", "score"):  # warm-up: first calls import and cache
            wrk(server.base, ep, ids, 3, 1)
        if part == "noop":  # the 5-minute anchor, then 16 connections on every endpoint
            out["one"] = {"noop": wrk(server.base, "noop", ids, args.minutes * 60, 1)}
            out["many"] = {ep: wrk(server.base, ep, ids, args.many_seconds, 16) for ep in ("noop", "recommend", "score")}
        elif part in ("recommend", "score"):  # a no-op anchor of the same server first, then the endpoint
            out["one"] = {"noop": wrk(server.base, "noop", ids, args.anchor_minutes * 60, 1),
                          part: wrk(server.base, part, ids, args.minutes * 60, 1)}
        else:  # stock / observability: shorter runs, said in the report
            m = args.stock_minutes
            out["one"] = {ep: wrk(server.base, ep, ids, m * 60, 1) for ep in ("noop", "recommend", "score")}
            out["many"] = {ep: wrk(server.base, ep, ids, args.stock_many_seconds, 16)
                           for ep in ("noop", "recommend", "score")}
            if args.stock_soak_minutes > 0:
                out["soak"] = soak_summary(soak(server, ids, args.soak_requests, args.stock_soak_minutes,
                                                args.soak_connections), args.soak_connections, args.stock_soak_minutes)
        for table in ("one", "many"):
            for r in out.get(table, {}).values():
                print(" ", row(r), flush=True)
    finally:
        server.stop()
    return out


def _checks(one: dict, base: float, where: str) -> list[str]:
    lines = []
    for ep in ("recommend", "score"):
        if ep in one:
            r = one[ep]
            lines.append(f"- `/{ep}` ({where}): p99 {r['p99']:.2f} ms (target <= 10: "
                         f"{'met' if r['p99'] <= 10 else 'NOT met'}), p50 {r['p50']:.2f} ms = {r['p50'] / base:.2f}x "
                         f"the no-op's {base:.2f} ms (target <= 1.5x: {'met' if r['p50'] <= 1.5 * base else 'NOT met'})")
    return lines


def _soak_lines(s: dict, target: int) -> list[str]:
    g = s["growth_after_100k"]
    gtxt = f"{g:+.1f} MB" if g is not None else "n/a (fewer than 100,000 requests)"
    bpr = f"; {s['bytes_per_request']:,.0f} B/request overall" if s["bytes_per_request"] is not None else ""
    parts = (f", in {s['invocations']} invocations on one server (it idled between them)"
             if s.get("invocations", 1) > 1 else "")
    return [f"- soak: {s['requests']:,} `/recommend` requests ({s['connections']} connections) in "
            f"{s['seconds'] / 60:.1f} min{parts} (bound {s['minutes']:g} min, target {target:,} requests: "
            f"{'met' if s['requests'] >= target else 'NOT met'}), {s['errors']} errors; RSS growth from the 100,000th "
            f"request: {gtxt} (target <= 50 MB){bpr}; worst 30 s chunk p99 {s['max_chunk_p99']:.2f} ms",
            "- worker RSS (MB) by requests served: " + ", ".join(f"{n:,}: {m:.1f}" for n, m in s["samples"])]


def report(parts: dict[str, dict], n_users: int, target: int) -> str:
    lines = [f"World: {n_users:,} customers, real models (LightGBM churn/ltv/propensity, EASE recommender bundle) in a "
             f"temporary MLflow registry; one BentoML worker; wrk 4.1 on 127.0.0.1. Run in parts (each invocation "
             f"under 10 minutes, its own server start, same world); each part's command and time are given.", ""]
    portrait = [parts[p] for p in ("noop", "recommend", "score", "soak") if p in parts]
    if portrait:
        lines += ["### portrait (`portrait serve` defaults)", ""]
        rows = []
        for res in portrait:
            rows += [row({**r, "endpoint": f"{r['endpoint']} ({res['part']} part)"}) for r in res.get("one", {}).values()]
        for res in portrait:
            rows += [row(r) for r in res.get("many", {}).values()]
        if rows:
            lines += [HEADER, *rows, ""]
        long_base = parts.get("noop", {}).get("one", {}).get("noop")
        for p in ("recommend", "score"):
            if p in parts:
                one = parts[p]["one"]
                lines += _checks(one, one["noop"]["p50"], f"{p} part, anchor = its own no-op run")
                if long_base is not None:
                    lines += _checks({p: one[p]}, long_base["p50"], "against the 5-minute no-op part")
        if "soak" in parts:
            lines += _soak_lines(parts["soak"]["soak"], target)
        lines.append("")
    for name in ("observability", "stock"):
        if name in parts:
            res = parts[name]
            title = ("observability (`portrait serve --tracing --metrics`)" if name == "observability"
                     else "stock BentoML (tracing, metrics, access log, 60 s timers, CPython GC thresholds)")
            lines += [f"### {title}", "", HEADER, *(row(r) for r in res["one"].values()),
                      *(row(r) for r in res["many"].values()), ""]
            lines += _checks(res["one"], res["one"]["noop"]["p50"], f"{name}, shorter runs")
            if "soak" in res:
                lines += _soak_lines(res["soak"], target)
            lines.append("")
    lines += ["Commands (one per part):", ""]
    lines += [f"- `{res['command']}` — {res['when']}" for res in parts.values()]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=PARTS, required=True, help="which share of the benchmark to run now")
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--items", type=int, default=2_000)
    ap.add_argument("--world", default="/tmp/portrait-serving-world",
                    help="folder the world is built in once and reused from by every part")
    ap.add_argument("--minutes", type=float, default=5.0, help="one-connection run of the part's endpoint")
    ap.add_argument("--anchor-minutes", type=float, default=1.0, help="no-op run before /recommend or /score")
    ap.add_argument("--many-seconds", type=float, default=30.0, help="16-connection run per endpoint")
    ap.add_argument("--soak-requests", type=int, default=1_000_000)
    ap.add_argument("--soak-minutes", type=float, default=8.5, help="time bound of one soak invocation")
    ap.add_argument("--soak-total-minutes", type=float, default=20.0, help="time bound of the whole soak")
    ap.add_argument("--soak-connections", type=int, default=16)
    ap.add_argument("--stock-minutes", type=float, default=1.0, help="one-connection runs of stock/observability")
    ap.add_argument("--stock-many-seconds", type=float, default=20.0)
    ap.add_argument("--stock-soak-minutes", type=float, default=2.0)
    ap.add_argument("--fresh", action="store_true", help="forget the parts measured before")
    args = ap.parse_args()
    if args.part == "soak" and args.soak_minutes * 60 < 5:  # soak() stops with under 5 s left: no progress, ever
        ap.error("--soak-minutes must be at least 5 seconds (0.09) for --part soak")
    root = Path(args.world)
    world = make_world(args.users, args.items, root)
    store = root / "soak_parts"
    store.mkdir(exist_ok=True)
    if args.fresh:
        forget_parts(store)
    res = run_soak(world, args, store) if args.part == "soak" else run_part(args.part, world, args)
    res["command"] = COMMAND + " " + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()
                                              if v is not False and v is not True) + (" --fresh" if args.fresh else "")
    (store / f"{args.part}.json").write_text(json.dumps(res))
    parts = {p: json.loads((store / f"{p}.json").read_text()) for p in PARTS if (store / f"{p}.json").exists()}
    md = report(parts, len(world.one_ids), args.soak_requests)
    write_section("serving_soak", md, COMMAND + " --part ... (see the commands below)")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
