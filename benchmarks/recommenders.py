"""Recommender benchmark: MovieLens 100K side by side with the peers, generalization, and 1M-customer scale.

Run (timings are targets, so alone on the machine; each part < 10 min)::

    .venv/bin/python -m benchmarks.recommenders --skip-scale
    .venv/bin/python -m benchmarks.recommenders --skip-ml --skip-synthetic
        [--scale-users 1000000 --scale-items 100000 --scale-interactions 50000000]

1. MovieLens 100K, reference protocol (per-user random 75/25, seed 42, every held-out rating
   relevant, seen removed, k=10): portrait's default (``window_ease``) and every peer in one run
   (popularity, implicit ALS/BPR with defaults, BM25 item-kNN, EASE lambda=500, DLAE), printed
   beside the anchors measured earlier and the published Microsoft Recommenders figures.
2. Generalization, same configuration: other seeds (7, 123), the per-user temporal protocol, and the
   synthetic generator's events (20k people; random and temporal).
3. Scale: synthetic 1M customers x 100k items x 50M interactions (latent taste clusters, Zipf item
   popularity, timestamps): fit time of the default model, batch top-20 throughput, single-customer
   p99 latency in process, and FAISS item-index recall@10 vs exact.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ANCHORS = {  # issue 6, measured before this work under the same protocol (nDCG@10, MAP@10)
    "popularity": (0.247, None), "als": (0.316, 0.090), "bpr": (0.312, None), "item_knn": (0.411, None),
    "ease": (0.480, 0.147),
}
PUBLISHED = {"BiVAE": (0.475, 0.146), "BPR (cornac)": (0.442, None), "LightGCN": (0.420, None), "SAR": (0.382, None)}
TARGET = {"ndcg": 0.50, "map": 0.16, "fit_seconds": 2.0, "scale_fit": 300.0, "batch_per_s": 20_000, "p99_ms": 5.0,
          "ann_recall": 0.99}
PEERS = ("popularity", "als", "bpr", "item_knn", "ease", "dlae")
ML = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "movielens-100k"


def _row(name: str, r: dict, anchor: tuple | None = None) -> str:
    a = f"{anchor[0]:.3f}" if anchor and anchor[0] is not None else ""
    am = f"{anchor[1]:.3f}" if anchor and anchor[1] is not None else ""
    return (f"| {name} | {r['precision']:.4f} | {r['recall']:.4f} | {r['ndcg']:.4f} | {r['map']:.4f} | "
            f"{r['hit_rate']:.4f} | {r['coverage']:.4f} | {r['fit_seconds']:.2f} | {r.get('fit_cpu_seconds', 0):.2f} "
            f"| {a} | {am} |")


HEAD = ("| model | P@10 | R@10 | nDCG@10 | MAP@10 | hit rate | coverage | fit s (wall) | fit s (CPU) | anchor nDCG "
        "| anchor MAP |\n|---|---|---|---|---|---|---|---|---|---|---|")


def movielens(lines: list[str]) -> dict:
    from features.sources.movielens import load_interactions
    from training.recommender import evaluate_frame

    df = load_interactions(ML.resolve())
    out = {}
    for label, protocol, seed in (("random-75-25, seed 42", "random-75-25", 42), ("random-75-25, seed 7", "random-75-25", 7),
                                  ("random-75-25, seed 123", "random-75-25", 123),
                                  ("temporal (each user's last 25%)", "temporal", 42)):
        r = evaluate_frame(df, protocol, seed, 10, PEERS)
        out[label] = r
        lines += [f"\n**MovieLens 100K, {label}** (load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
                  f"cores; chosen {r['chosen']})\n", HEAD,
                  _row("**window_ease (portrait default)**", r, (TARGET["ndcg"], TARGET["map"]) if seed == 42 and
                       protocol == "random-75-25" else None)]
        for name, b in r["baselines"].items():
            lines.append(_row(name, b, ANCHORS.get(name) if seed == 42 and protocol == "random-75-25" else None))
        print("\n".join(lines[-(len(r["baselines"]) + 3):]), flush=True)
    lines += ["\n**Side by side** (nDCG@10 / MAP@10; same configuration everywhere, tuned only on inner splits of each "
              "training part)\n", "| model | " + " | ".join(out) + " |", "|---|" + "---|" * len(out)]
    for name in ("window_ease", *PEERS):
        cells = [(r if name == "window_ease" else r["baselines"][name]) for r in out.values()]
        lines.append(f"| {name} | " + " | ".join(f"{c['ndcg']:.4f} / {c['map']:.4f}" for c in cells) + " |")
    lines.append("\nPublished (Microsoft Recommenders MovieLens 100K table, same protocol): " + ", ".join(
        f"{k} nDCG {v[0]:.3f}" + (f" / MAP {v[1]:.3f}" if v[1] else "") for k, v in PUBLISHED.items()))
    return out


def fit_times(repeats: int = 5) -> tuple[float, float, float]:
    """The default's fit on MovieLens seed 42, ``repeats`` times after the evaluation's own fit (which also paid
    the process's first-call costs): (median, min, max) wall seconds. One shared-machine reading is noisy."""
    from features.sources.movielens import load_interactions
    from training.evaluation.splits import split_matrices
    from training.recommender_eval import default_model

    split = split_matrices(load_interactions(ML.resolve()), "random-75-25", 42)
    walls = []
    for _ in range(repeats):
        model = default_model("random-75-25", seed=42)
        t0 = time.perf_counter()
        model.fit(split.train, times=split.train_times)
        walls.append(time.perf_counter() - t0)
    return float(np.median(walls)), min(walls), max(walls)


AVAILABILITY_SEEDS = (42, 7, 123, 1, 2, 3, 4, 5, 2024)


def availability(lines: list[str]) -> dict:
    """The availability window on its own: the random-protocol default with it off and on, MovieLens 100K, 9 seeds."""
    from features.sources.movielens import load_interactions
    from training.recommender_eval import evaluate_frame

    df = load_interactions(ML.resolve())
    out = {}
    lines += ["\n**Availability window, MovieLens 100K, random 75/25** (the default with `availability` off / on; "
              "`kept` = the inner split did not veto it)\n",
              "| seed | off nDCG / MAP | on nDCG / MAP | kept | gain nDCG / MAP |", "|---|---|---|---|---|"]
    for seed in AVAILABILITY_SEEDS:
        off, on = (evaluate_frame(df, "random-75-25", seed, 10, (), model_params={"availability": flag})
                   for flag in (False, True))
        out[seed] = {False: off, True: on}
        lines.append(f"| {seed} | {off['ndcg']:.4f} / {off['map']:.4f} | {on['ndcg']:.4f} / {on['map']:.4f} | "
                     f"{on['chosen']['availability']} | {on['ndcg'] - off['ndcg']:+.4f} / {on['map'] - off['map']:+.4f} |")
        print(lines[-1], flush=True)
    return out


def synthetic_events(people: int = 20_000, seed: int = 42) -> pd.DataFrame:
    """The generator's item events as interactions (user = true person, weight by event type)."""
    from features.sources.synthetic import GeneratorConfig, generate

    tmp = Path(tempfile.mkdtemp(prefix="recsys-bench-"))
    generate(GeneratorConfig(people=people, seed=seed), tmp)
    ev = pd.read_parquet(tmp / "raw" / "events.parquet", columns=["source", "record_id", "event_type", "item_id", "ts"])
    truth = pd.read_parquet(tmp / "raw" / "_truth" / "truth_records.parquet", columns=["source", "record_id", "person_id"])
    ev = ev.dropna(subset=["item_id"]).merge(truth, on=["source", "record_id"])
    weights = {"purchase": 4.0, "add_to_cart": 2.0, "favorite": 2.0, "rate": 1.5, "click": 1.0, "view": 0.5}
    ev["event_type"] = ev["event_type"].astype(str)
    ev = ev[ev["event_type"].isin(weights)]
    return pd.DataFrame({"user": ev["person_id"].astype(str), "item": ev["item_id"].astype(str),
                         "weight": ev["event_type"].map(weights).to_numpy(), "timestamp": ev["ts"]})


def generalization(lines: list[str]) -> dict:
    from training.recommender import evaluate_frame

    df = synthetic_events()
    out = {}
    for protocol in ("random-75-25", "temporal"):
        r = evaluate_frame(df, protocol, 42, 10, ("popularity", "item_knn", "ease"))
        out[protocol] = r
        lines += [f"\n**Synthetic generator events (20k people, {len(df):,} events, {r['n_items']} items), {protocol}** "
                  f"(chosen {r['chosen']})\n", HEAD, _row("**window_ease (portrait default)**", r)]
        lines += [_row(n, b) for n, b in r["baselines"].items()]
        print("\n".join(lines[-6:]), flush=True)
    return out


def scale_data(n_users: int, n_items: int, n_inter: int, seed: int = 0):
    """``n_inter`` distinct pairs; users in 500 taste clusters, 60% of picks from the cluster's pool (Zipf
    inside), 40% from a global Zipf over the items; times uniform over a year."""
    import scipy.sparse as sp

    rng = np.random.default_rng(seed)
    per = rng.poisson(1.2 * n_inter / n_users, n_users).clip(1)  # 20% extra draws: repeats are merged below
    n = int(per.sum())
    users = np.repeat(np.arange(n_users, dtype=np.int64), per)
    glob = np.cumsum(1.0 / np.arange(1, n_items + 1) ** 0.9)
    glob /= glob[-1]
    pool_size, n_clusters = 2_000, 500
    pools = np.stack([rng.choice(n_items, pool_size, replace=False, p=None) for _ in range(n_clusters)])
    local = np.cumsum(1.0 / np.arange(1, pool_size + 1) ** 1.0)
    local /= local[-1]
    cluster = rng.integers(0, n_clusters, n_users)[users]
    from_pool = rng.random(n) < 0.6
    items = np.searchsorted(glob, rng.random(n)).astype(np.int64)
    pick = np.searchsorted(local, rng.random(int(from_pool.sum())))
    items[from_pool] = pools[cluster[from_pool], pick]
    keys = np.unique(users * n_items + items)
    if len(keys) > n_inter:  # exactly n_inter distinct (customer, item) pairs
        keys = np.sort(rng.choice(keys, n_inter, replace=False))
    u, i = keys // n_items, keys % n_items
    t = rng.random(len(keys)) * 365.0 + 1.0  # days; order inside a user is random
    X = sp.csr_matrix((np.ones(len(keys), np.float32), (u, i)), shape=(n_users, n_items))
    T = sp.csr_matrix((t, (u, i)), shape=(n_users, n_items))
    return X, T


def scale(lines: list[str], n_users: int, n_items: int, n_inter: int) -> dict:
    import resource

    from models.recommenders import make

    t0 = time.perf_counter()
    X, T = scale_data(n_users, n_items, n_inter)
    gen_s = time.perf_counter() - t0
    print(f"scale data: {X.shape[0]:,} x {X.shape[1]:,}, {X.nnz:,} interactions in {gen_s:.0f} s", flush=True)
    model = make("window_ease", inner="temporal")
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(X, times=T)
    fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
    print(f"fit {fit_s:.0f} s (CPU {fit_cpu:.0f} s); chosen lam {model.lam_:.1f} window {model.window_weight_} "
          f"half-life {model.half_life_} low-pass rank {model.low_pass_rank_} weight {model.low_pass_weight_} "
          f"(terms {model.low_pass_terms_})", flush=True)
    # batch top-20 over every customer
    t0 = time.perf_counter()
    batch = 8192
    for a in range(0, X.shape[0], batch):
        model.recommend(X[a:a + batch], k=20, times=T[a:a + batch])
    batch_s = time.perf_counter() - t0
    per_s = X.shape[0] / batch_s
    print(f"batch top-20: {X.shape[0]:,} customers in {batch_s:.0f} s = {per_s:,.0f}/s", flush=True)
    # single-customer latency, in process
    rng = np.random.default_rng(1)
    lat = []
    for r in rng.integers(0, X.shape[0], 2000):
        s = time.perf_counter()
        model.recommend(X[r], k=20, times=T[r])
        lat.append(time.perf_counter() - s)
    lat_ms = np.array(lat[100:]) * 1e3
    p50, p99 = float(np.percentile(lat_ms, 50)), float(np.percentile(lat_ms, 99))
    print(f"single recommend p50 {p50:.2f} ms p99 {p99:.2f} ms", flush=True)
    # FAISS item index over SVD item vectors, recall@10 vs exact
    from sklearn.utils.extmath import randomized_svd

    from models.ann import AnnIndex

    t0 = time.perf_counter()
    _, s, vt = randomized_svd(X, n_components=32, n_iter=2, random_state=0)
    vecs = (vt.T * np.sqrt(s)).astype(np.float32)
    index = AnnIndex(metric="cosine", kind="ivf", target_recall=0.99).fit(vecs)
    recall = float(index.recall_vs_exact(k=10))
    ann_s = time.perf_counter() - t0
    print(f"FAISS IVF over {len(vecs):,} item vectors: recall@10 vs exact {recall:.4f} ({ann_s:.0f} s)", flush=True)
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    modelled_share = X[:, model.items_].nnz / max(X.nnz, 1)
    ok = lambda cond: "yes" if cond else "**no**"  # noqa: E731
    lines += [
        f"\n**Scale: synthetic {X.shape[0]:,} customers x {X.shape[1]:,} items x {X.nnz:,} interactions** "
        f"(data generated in {gen_s:.0f} s; default model `window_ease`, modelled items {len(model.items_):,} most "
        f"popular, holding {modelled_share:.0%} of the interactions; "
        f"B pruned to {model.B_.getnnz(axis=0).max() if hasattr(model.B_, 'getnnz') else 'dense'} per item; "
        f"peak RSS {peak_gb:.1f} GB; load average {os.getloadavg()[0]:.1f})\n",
        "| measure | value | target | met |", "|---|---|---|---|",
        f"| fit (inner tuning + final solve), wall | {fit_s:.0f} s (CPU {fit_cpu:.0f} s) | <= {TARGET['scale_fit']:.0f} s | "
        f"{ok(fit_s <= TARGET['scale_fit'])} |",
        f"| batch top-20, all customers | {per_s:,.0f} customers/s ({batch_s:.0f} s) | >= {TARGET['batch_per_s']:,} /s | "
        f"{ok(per_s >= TARGET['batch_per_s'])} |",
        f"| single recommend in process (1,900 requests) | p50 {p50:.2f} ms, p99 {p99:.2f} ms | p99 <= {TARGET['p99_ms']} ms | "
        f"{ok(p99 <= TARGET['p99_ms'])} |",
        f"| FAISS IVF item index (SVD item vectors) recall@10 vs exact | {recall:.4f} (nprobe calibrated) | "
        f">= {TARGET['ann_recall']} | "
        f"{ok(recall >= TARGET['ann_recall'])} |",
    ]
    return {"fit_s": fit_s, "per_s": per_s, "p99": p99, "recall": recall}


def main() -> None:
    import sys

    from benchmarks._report import write_section

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--skip-ml", action="store_true", help="skip MovieLens (section recommenders)")
    ap.add_argument("--skip-synthetic", action="store_true", help="skip generator data (section recommenders-generalization)")
    ap.add_argument("--skip-scale", action="store_true", help="skip the 1M-customer run (section recommenders-scale)")
    ap.add_argument("--skip-availability", action="store_true",
                    help="skip the window off/on runs over 9 seeds (section recommenders-availability)")
    ap.add_argument("--scale-users", type=int, default=1_000_000)
    ap.add_argument("--scale-items", type=int, default=100_000)
    ap.add_argument("--scale-interactions", type=int, default=50_000_000)
    args = ap.parse_args()
    cmd = " ".join([".venv/bin/python -m benchmarks.recommenders", *sys.argv[1:]])
    if not args.skip_ml:
        lines: list[str] = []
        ml = movielens(lines)
        main_run = ml["random-75-25, seed 42"]
        med, lo, hi = fit_times()
        verdict = (f"\nTarget nDCG@10 >= {TARGET['ndcg']} and MAP >= {TARGET['map']} with fit <= {TARGET['fit_seconds']} s: "
                   f"measured nDCG {main_run['ndcg']:.4f}, MAP {main_run['map']:.4f}, fit {main_run['fit_seconds']:.2f} s "
                   f"wall / {main_run['fit_cpu_seconds']:.2f} s CPU in the evaluation (the process's first fit), "
                   f"{med:.2f} s wall median of 5 more fits (min {lo:.2f}, max {hi:.2f}; 2 BLAS threads; wall time "
                   "depends on the shared machine's load).")
        lines.append(verdict)
        print(verdict, flush=True)
        write_section("recommenders", "\n".join(lines), cmd)
    if not args.skip_availability:
        lines = []
        availability(lines)
        write_section("recommenders-availability", "\n".join(lines), cmd)
    if not args.skip_synthetic:
        lines = []
        generalization(lines)
        write_section("recommenders-generalization", "\n".join(lines), cmd)
    if not args.skip_scale:
        lines = []
        scale(lines, args.scale_users, args.scale_items, args.scale_interactions)
        write_section("recommenders-scale", "\n".join(lines), cmd)


if __name__ == "__main__":
    main()
