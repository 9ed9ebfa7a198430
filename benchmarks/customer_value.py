"""Customer-value benchmark: CDNOW vs BG/NBD, synthetic ground truth, 1M-customer speed.

Run ``python -m benchmarks.customer_value [--parts cdnow,truth] [--people 5000] [--speed-rows 1000000]``
(``--parts truth`` holds the timing targets: run it alone on a quiet machine; the RESULTS.md section
combines the newest run of each part, each with its own command, date and load average).

1. **CDNOW** (``../shared/data/cdnow``): ``training.customer_value.evaluate`` — the code behind
   ``portrait evaluate customer-value`` — at calibration end 1997-09-30 with a 39-week holdout
   (Fader, Hardie & Lee 2005), side by side with BG/NBD + Gamma-Gamma fitted by ``lifetimes``
   in the same run, then at 1997-06-30 (52 weeks) and 1997-12-31 (25 weeks), same code and defaults,
   each with a holdout-fitted reference (LightGBM by 5-fold CV on the holdout labels over portrait's
   and purchase-sequence features: not a model, what this information supports; ``_value_reference``),
   with its bootstrap intervals and its AUC within the one-purchase-day customers and the others;
   then every month end 1997-06-30..1998-03-31 scored up to the end of the data, portrait vs BG/NBD +
   Gamma-Gamma. ``benchmarks.customer_value_sequence`` adds a GRU reference at the same dates.
2. **Synthetic truth**: generate ``--people`` people, resolve identities, build monthly features,
   Feast apply, then train churn, LTV and propensity (``training.*.train``) in a temporary MLflow
   store; their runs hold AUC/Spearman against the generator's true future and the recency baseline.
3. **Speed**: the fitting steps of the three jobs (churn classifier + calibration, LTV LightGBM and
   ZILN, propensity overall + 5 categories) on ``--speed-rows`` customer rows resampled from the
   synthetic training set (Feast retrieval excluded and timed separately at demo scale), and batch
   scoring of the same number of rows through the registered churn pyfunc. Targets: training all
   three <= 10 min, scoring 1M <= 60 s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks._report import read_section, write_section
from benchmarks._value_reference import ceiling, details_table

CDNOW = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cdnow" / "CDNOW_master.txt"
ANCHOR = {"auc": 0.763, "spearman": 0.421, "gini": 0.672, "top_decile_capture": 0.516, "total_ratio": 0.83}
TARGET = {"auc": ">= 0.79", "spearman": ">= 0.47", "gini": ">= 0.70", "top_decile_capture": "-", "total_ratio": "0.95-1.05"}
COLS = ("auc", "spearman", "gini", "top_decile_capture", "total_ratio")
DATES = (("1997-09-30", 39), ("1997-06-30", 52), ("1997-12-31", 25))  # data end 1998-06-30


def _fmt(v: object) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.3f}"


def sweep_dates(last: str = "1998-06-30") -> list[tuple[str, int]]:
    """Month ends from 1997-06-30 to three months before ``last``, each scored up to ``last``."""
    ends = pd.date_range("1997-06-30", pd.Timestamp(last) - pd.DateOffset(months=3) + pd.Timedelta(days=1), freq="ME")
    return [(str(e.date()), (pd.Timestamp(last) - e).days // 7) for e in ends]


def cdnow() -> tuple[str, dict]:
    from features.sources.cdnow import load_transactions
    from features.transactions import prepare
    from training.customer_value import evaluate

    tx = prepare(load_transactions(CDNOW.resolve()), ts="date", amount="amount", quantity="quantity")
    lines, results, tops = [], {}, []
    for i, (end, weeks) in enumerate(DATES):
        t0 = time.perf_counter()
        r = evaluate(tx, pd.Timestamp(end, tz="UTC"), weeks)
        secs = time.perf_counter() - t0
        results[(end, weeks)] = r
        print(f"CDNOW {end} +{weeks}w ({secs:.0f} s): " + ", ".join(f"{k} {_fmt(r[k])}" for k in COLS), flush=True)
        top = ceiling(tx, end, weeks)
        tops.append((end, weeks, top))
        lines.append(f"\n**Calibration end {end}, {weeks}-week holdout** ({r['setup']['customers']:,} customers, "
                     f"{r['setup']['holdout_buyers']:,} buy in the holdout; training horizon "
                     f"{r['setup']['train_horizon_days']} d, cutoffs {', '.join(r['setup']['train_cutoffs'])}; "
                     f"age curve k = {r['setup']['age_curve']['k']:.2f}; {secs:.0f} s)\n")
        lines.append("| model | " + " | ".join(COLS) + " |\n|---|" + "---|" * len(COLS))
        lines.append(f"| **portrait ({r['model']}, default)** | " + " | ".join(_fmt(r[c]) for c in COLS) + " |")
        for name, b in r["baselines"].items():
            lines.append(f"| {name} | " + " | ".join(_fmt(b.get(c)) for c in COLS) + " |")
        lines.append("| _holdout-fitted reference: LightGBM 5-fold CV on the holdout labels, portrait's + sequence "
                     "features, best of 3 sizes (not a model)_ | "
                     + " | ".join(_fmt(top.get(c)) for c in COLS) + " |")
        if i == 0:
            lines.append("| BG/NBD+GG anchor (issue, Fader-Hardie-Lee setup) | " + " | ".join(f"{ANCHOR[c]:.3f}" for c in COLS) + " |")
            lines.append("| target | " + " | ".join(TARGET[c] for c in COLS) + " |")
    lines.append("\n**Holdout-fitted reference, details** (the best figure's out-of-fold predictions: AUC from the "
                 "buy head, Spearman from the best head; 95% percentile intervals over 200 bootstrap resamples of "
                 "customers, seed 0; the groups split customers by their purchase days before the calibration end)\n")
    lines.append(details_table(tops))
    # the same defaults at every month end, each scored up to the end of the data
    lines.append("\n**Every month end from 1997-06-30, holdout up to 1998-06-30** (same code and defaults; "
                 "BG/NBD + Gamma-Gamma from `lifetimes` in the same run)\n")
    lines.append("| calibration end | weeks | portrait auc | spearman | gini | total_ratio | BG/NBD auc | spearman | gini | total_ratio |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|")
    ratios = []
    for end, weeks in sweep_dates():
        r = results.get((end, weeks)) or evaluate(tx, pd.Timestamp(end, tz="UTC"), weeks)
        b = r["baselines"]["bgnbd_gg_lifetimes"]
        ratios.append((r["total_ratio"], b["total_ratio"]))
        print(f"CDNOW sweep {end} +{weeks}w: " + ", ".join(f"{k} {_fmt(r[k])}" for k in COLS), flush=True)
        lines.append(f"| {end} | {weeks} | " + " | ".join(_fmt(r[c]) for c in ("auc", "spearman", "gini", "total_ratio"))
                     + " | " + " | ".join(_fmt(b[c]) for c in ("auc", "spearman", "gini", "total_ratio")) + " |")
    ours, bg = np.array(ratios).T
    lines.append(f"\nTotal predicted / actual over these {len(ratios)} dates: portrait {ours.min():.2f}-{ours.max():.2f} "
                 f"(mean |log ratio| {np.abs(np.log(ours)).mean():.3f}), BG/NBD + GG {bg.min():.2f}-{bg.max():.2f} "
                 f"({np.abs(np.log(bg)).mean():.3f}).")
    return "\n".join(lines), results


def synthetic(people: int, root: Path) -> tuple[str, dict, object]:
    import mlflow

    from portrait.commands import demo as D
    from portrait.settings import load_settings
    from training.churn import ChurnConfig
    from training.churn import train as train_churn
    from training.datasets import Paths
    from training.ltv import LTVConfig
    from training.ltv import train as train_ltv
    from training.propensity import PropensityConfig
    from training.propensity import train as train_prop

    s = load_settings({"PORTRAIT_DATA_DIR": str(root / "data"), "PORTRAIT_MLRUNS_DIR": str(root / "mlruns"),
                       "PORTRAIT_HMAC_KEY": "bench-key-0123456789abcdef"})
    opts = D.DemoOptions(people=people, seed=42, serve=False)
    t0 = time.perf_counter()
    for name, step in D.STEPS[:4]:
        if not name.startswith("validate"):  # the generator's output is validated by its own tests
            step(s, opts)
    from features.store import open_store

    open_store(s).apply()
    prep = time.perf_counter() - t0
    paths = Paths.from_settings(s)
    rows, runs = [], {}
    for job, fn, cfg in (("churn", train_churn, ChurnConfig(paths=paths)), ("ltv", train_ltv, LTVConfig(paths=paths)),
                         ("propensity", train_prop, PropensityConfig(paths=paths))):
        t1 = time.perf_counter()
        run = mlflow.get_run(fn(cfg))
        m = run.data.metrics
        runs[job] = (m, time.perf_counter() - t1)
        print(f"synthetic {job}: {runs[job][1]:.0f} s " + json.dumps({k: round(v, 3) for k, v in m.items()
                                                                       if k.startswith(("truth", "auc", "gini", "spearman", "baseline"))}), flush=True)
    c, lt, p = runs["churn"][0], runs["ltv"][0], runs["propensity"][0]
    rows.append("| model | metric vs generator truth | portrait | recency-only baseline | holdout (last in-data cutoff) | train s |")
    rows.append("|---|---|---|---|---|---|")
    rows.append(f"| churn (90 d, active 180 d) | AUC vs true no-purchase in 90 d | {_fmt(c.get('truth_auc'))} | "
                f"{_fmt(c.get('truth_baseline_recency_auc'))} | AUC {_fmt(c.get('auc'))} (recency {_fmt(c.get('baseline_recency_auc'))}) | {runs['churn'][1]:.0f} |")
    rows.append(f"| LTV (180 d) | Spearman vs true 180-d spend | {_fmt(lt.get('truth_spearman'))} | "
                f"{_fmt(lt.get('truth_baseline_recency_spearman'))} | Gini {_fmt(lt.get('gini'))} (recency {_fmt(lt.get('baseline_recency_gini'))}) | {runs['ltv'][1]:.0f} |")
    rows.append(f"| propensity (30 d) | AUC vs true purchase in 30 d | {_fmt(p.get('truth_auc'))} | "
                f"{_fmt(p.get('truth_baseline_recency_auc'))} | AUC {_fmt(p.get('auc'))} (recency {_fmt(p.get('baseline_recency_auc'))}) | {runs['propensity'][1]:.0f} |")
    cats = sorted(k for k in p if k.startswith("truth_propensity_"))
    text = (f"{people:,} people (seed 42), pipeline to Feast apply {prep:.0f} s.\n\n" + "\n".join(rows)
            + ("\n\nPer-category propensity AUC vs truth: " + ", ".join(f"{k[6:-4]} {p[k]:.3f}" for k in cats) if cats else ""))
    return text, runs, paths


def speed(paths: object, n_rows: int) -> str:
    """Fit the three jobs' models on ``n_rows`` resampled rows and batch-score them."""
    from models.calibration import MultiOutput
    from training import datasets, registry
    from training.churn import ChurnConfig, fit_binary
    from training.datasets import DatasetConfig
    from training.ltv import LTVConfig, fit_candidates
    from training.propensity import PropensityConfig, fit_outputs

    t0 = time.perf_counter()
    ts = datasets.build(paths, DatasetConfig(service="propensity_v1", horizon_days=30))
    retrieval = time.perf_counter() - t0
    frame = ts.frame
    feats = [c for c in ts.features if c in frame.columns]
    rng = np.random.default_rng(0)

    def grow(part: pd.DataFrame, n: int) -> pd.DataFrame:
        out = part.iloc[rng.integers(0, len(part), n)].reset_index(drop=True)
        num = [c for c in feats if pd.api.types.is_float_dtype(out[c])]
        out[num] = out[num] * rng.normal(1.0, 0.02, (n, len(num)))  # jitter: no exact duplicates
        return out

    # resample inside the time split, so validation rows are never copies of training rows
    src_tr, src_va, src_te = ts.split()
    n_tr, n_va = int(n_rows * 0.7), int(n_rows * 0.15)
    tr, va, te = grow(src_tr, n_tr), grow(src_va, n_va), grow(src_te, n_rows - n_tr - n_va)
    big = pd.concat([tr, va, te], ignore_index=True)
    y = lambda df, c: df[c].astype(float).to_numpy()  # noqa: E731
    times = {}
    t = time.perf_counter()
    cc = ChurnConfig(paths=paths)
    churn = fit_binary(tr, va, feats, 1 - y(tr, "purchased_30d"), 1 - y(va, "purchased_30d"), cc.gbm, dict(cc.monotone),
                       cc.calibration)
    times["churn"] = time.perf_counter() - t
    trees = churn.base.best_iteration_
    t = time.perf_counter()
    fit_candidates(tr, va, feats, y(tr, "spend_30d"), y(va, "spend_30d"), LTVConfig(paths=paths))
    times["ltv"] = time.perf_counter() - t
    t = time.perf_counter()
    targets = {"propensity": "purchased_30d"}
    targets.update({"propensity_" + c[8:]: c for c in ts.labels if c.startswith("buy_30d_")})
    outs, _ = fit_outputs(tr, va, feats, targets, PropensityConfig(paths=paths))
    MultiOutput(outs)
    times["propensity"] = time.perf_counter() - t
    registry.setup(paths.mlflow_uri, paths.mlflow_artifacts)
    with registry.start_run("bench_speed"):
        v = registry.log_and_register("bench_speed_churn", churn, feats, output="churn_risk")
    model = registry.load("bench_speed_churn", "challenger")
    score_df = big[feats]
    t = time.perf_counter()
    out = model.predict(score_df)
    times["score"] = time.perf_counter() - t
    assert len(out) == n_rows
    total = times["churn"] + times["ltv"] + times["propensity"]
    print(f"speed {n_rows:,} rows: " + json.dumps({k: round(v, 1) for k, v in times.items()}), flush=True)
    return (f"{n_rows:,} customer rows x {len(feats)} features, resampled (with 2% jitter) from the synthetic "
            f"training set inside its time split (70/15/15 train/validation/test); 1 LightGBM thread. Feast retrieval of the "
            f"{len(frame):,}-row training set at demo scale: {retrieval:.0f} s (not in the figures below).\n\n"
            "| step | seconds | target |\n|---|---|---|\n"
            f"| churn: LightGBM + early stopping + Platt | {times['churn']:.0f} | |\n"
            f"| LTV: LightGBM tweedie + ZILN (both candidates) | {times['ltv']:.0f} | |\n"
            f"| propensity: overall + {len(outs) - 1} categories | {times['propensity']:.0f} | |\n"
            f"| **training all three** | **{total:.0f}** | <= 600 |\n"
            f"| batch scoring {n_rows:,} rows through the churn pyfunc (v{v}, {trees} trees) | **{times['score']:.1f}** | <= 60 |")


PARTS = ("cdnow", "truth")  # --parts, in the section's order
PART_HEAD = re.compile(r"^_Part `(\w+)`:", re.M)


def stored_parts(section: str | None) -> dict[str, str]:
    """The ``_Part `name`: ...`` blocks of the section as RESULTS.md holds it, by name.

    The section is rebuilt from these, so running one part keeps the others' newest figures.
    """
    if not section:
        return {}
    body = section[: section.rfind("<!-- /section:")]
    heads = list(PART_HEAD.finditer(body))
    ends = [h.start() for h in heads[1:]] + [len(body)]
    return {h.group(1): body[h.start():e].strip() for h, e in zip(heads, ends) if h.group(1) in PARTS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--people", type=int, default=5000, help="synthetic people for the truth scores")
    ap.add_argument("--speed-rows", type=int, default=1_000_000, help="rows for the training/scoring speed test (0 skips)")
    ap.add_argument("--parts", default="cdnow,truth",
                    help="cdnow (real data, no timing claims) and/or truth (synthetic truth + speed: run it alone, "
                         "on a quiet machine); the section shows the newest run of each part")
    args = ap.parse_args()
    wanted = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(wanted) - set(PARTS))
    if unknown or not wanted:
        ap.error(f"--parts: unknown part(s) {unknown or args.parts!r}; choose from {', '.join(PARTS)}")
    cmd = "python -m benchmarks.customer_value" + (f" --people {args.people}" if args.people != 5000 else "") + (
        f" --speed-rows {args.speed_rows}" if args.speed_rows != 1_000_000 else "") + f" --parts {','.join(wanted)}"
    stored = stored_parts(read_section("customer_value"))

    def save(part: str, markdown: str) -> None:  # after every part, so a cut-off run still leaves its figures
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        stamp = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d %H:%M UTC")
        stored[part] = f"_Part `{part}`: `{cmd}`, {stamp}, load average {load}._\n\n" + markdown
        body = "\n\n".join(stored[p] for p in PARTS if p in stored)
        write_section("customer_value", body, cmd)

    if "cdnow" in wanted:
        text, _ = cdnow()
        save("cdnow", "### CDNOW (`portrait evaluate customer-value`), every peer measured in the same run\n" + text)
    if "truth" in wanted:
        with tempfile.TemporaryDirectory(prefix="portrait-value-bench-") as tmp:
            text, _, paths = synthetic(args.people, Path(tmp))
            body = "### Synthetic data, scored against the generator's ground truth\n" + text
            if args.speed_rows:
                body += "\n\n### Speed\n" + speed(paths, args.speed_rows)
        save("truth", body)


if __name__ == "__main__":
    main()
