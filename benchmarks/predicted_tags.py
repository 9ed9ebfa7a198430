"""Predicted-tags write-back into Feast: portrait's merged bulk push against stock Feast's push, same rows, same run.

    .venv/bin/python -m benchmarks.predicted_tags [--rows 100000]

``PortraitStore.push_predicted_tags`` merges each row with the customer's stored one, rewrites the
offline Parquet atomically and writes online through the store's bulk ``write_arrow`` (the encoder
materialization uses). The anchor is the same call on a stock Feast repository (Feast's SQLite store,
whose online write is Feast's per-cell ``push``), measured here beside it. Two pushes each: into an
empty table, then a second batch that merges with the first.

Then the history part: ``--batches`` pushes of the same customers into one portrait store (a daily
score batch), timing each push and, after the last, the merge's read of the stored rows through the
side table of newest rows (``predicted_tags.latest.parquet``) against reading the whole history, the
earlier code path and the fallback for a history written by something else.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

T0 = pd.Timestamp.now(tz="UTC").floor("s")


def batch(n: int, day: int) -> pd.DataFrame:
    rng = np.random.default_rng(day)
    return pd.DataFrame({
        "one_id": [f"c{i:08d}" for i in range(n)], "churn_risk": rng.random(n),
        "churn_tier": rng.choice(["high", "medium", "low"], n), "ltv": rng.gamma(2.0, 50.0, n),
        "ltv_tier": rng.choice(["top", "mid", "low"], n), "propensity": rng.random(n),
        "propensity_decile": rng.integers(1, 11, n), "model_name": "churn,ltv,propensity",
        "model_version": "churn=1;ltv=1;propensity=1", "scored_at": T0 + pd.Timedelta(hours=day)})


def run(root: Path, rows: int, stock: bool) -> list[float]:
    from features.feast_ext.sample import customer_table, item_table
    from features.io import write_parquet
    from features.store import open_store

    data = root / ("stock" if stock else "portrait")
    cut = [datetime(2026, 1, 1, tzinfo=timezone.utc)]
    write_parquet(customer_table(1000, cut, seed=3), data / "features" / "customer_features.parquet")
    write_parquet(item_table(20, cut), data / "features" / "item_features.parquet")
    store = open_store(data, stock=stock)
    store.apply()
    times = []
    for day in (0, 1):
        t0 = time.perf_counter()
        assert store.push_predicted_tags(batch(rows, day)) == rows
        times.append(time.perf_counter() - t0)
    return times


def history(root: Path, rows: int, batches: int) -> tuple[list[float], float, float, int]:
    """Push times over ``batches`` daily batches; then the stored-row read via the side table and via the history."""
    from features import predicted_tags as pt
    from features.feast_ext.sample import customer_table, item_table
    from features.io import write_parquet
    from features.store import open_store

    data = root / "history"
    cut = [datetime(2026, 1, 1, tzinfo=timezone.utc)]
    write_parquet(customer_table(1000, cut, seed=3), data / "features" / "customer_features.parquet")
    write_parquet(item_table(20, cut), data / "features" / "item_features.parquet")
    store = open_store(data)
    store.apply()
    times = []
    for day in range(batches):
        t0 = time.perf_counter()
        store.push_predicted_tags(batch(rows, day))
        times.append(time.perf_counter() - t0)
    ids = batch(rows, 0)["one_id"]
    t0 = time.perf_counter()
    via_side = pt.latest_rows(store.predicted_path, ids)
    side_s = time.perf_counter() - t0
    pt.latest_path(store.predicted_path).unlink()
    t0 = time.perf_counter()
    whole = pt.latest_rows(store.predicted_path, ids)
    whole_s = time.perf_counter() - t0
    pd.testing.assert_frame_equal(via_side.sort_index(), whole.sort_index())  # the same rows either way
    import pyarrow.parquet as pq

    return times, side_s, whole_s, pq.read_metadata(store.predicted_path).num_rows


def main() -> None:
    from benchmarks._report import write_section

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000, help="customers per push")
    ap.add_argument("--batches", type=int, default=10, help="daily batches in the history part")
    args = ap.parse_args()
    for name in ("rows", "batches"):
        if getattr(args, name) < 1:
            ap.error(f"--{name}: at least 1, got {getattr(args, name)}")
    root = Path(tempfile.mkdtemp(prefix="predicted-tags-bench-"))
    try:
        ours = run(root, args.rows, stock=False)
        anchor = run(root, args.rows, stock=True)
        pushes, side_s, whole_s, stored = history(root, args.rows, args.batches)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    lines = [f"{args.rows:,} customers per push (9 predicted-tag columns + scored_at), two pushes (empty table, "
             "then a merge with the first):\n", "| store | push 1 s | push 2 s | rows/s (push 2) |", "|---|---|---|---|"]
    for name, t in (("portrait (merge + bulk write_arrow)", ours), ("stock Feast (anchor, same run)", anchor)):
        lines.append(f"| {name} | {t[0]:.1f} | {t[1]:.1f} | {args.rows / t[1]:,.0f} |")
    lines.append(f"\nSpeed-up on the merging push: {anchor[1] / ours[1]:.1f}x.")
    lines += [f"\n**History**: {args.batches} daily batches of the same {args.rows:,} customers into one portrait "
              f"store ({stored:,} offline rows at the end). Push time by batch: "
              + ", ".join(f"{i + 1}: {t:.1f} s" for i, t in enumerate(pushes)) + ".",
              f"The merge's read of the stored rows after the last batch: {side_s:.2f} s through the side table "
              f"of newest rows, {whole_s:.2f} s reading the whole history (the anchor: the fallback path, and "
              "what every merge read before the side table; same run, same rows returned)."]
    text = "\n".join(lines)
    print(text, flush=True)
    write_section("predicted-tags", text, " ".join([".venv/bin/python -m benchmarks.predicted_tags", *sys.argv[1:]]))


if __name__ == "__main__":
    main()
