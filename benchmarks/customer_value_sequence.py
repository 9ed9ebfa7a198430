"""CDNOW sequence reference: a GRU over weekly purchase bins, fitted on the holdout labels (issue #5).

Run ``python -m benchmarks.customer_value_sequence [--dates 1997-09-30:39,1997-06-30:52,1997-12-31:25]``
(default: all three dates, 18 min on the shared 2-core machine at load average 4.5, most of it the GRU and
portrait's own evaluation; ``--dates 1997-09-30:39`` alone took about 8 min there).

Like ``benchmarks.customer_value``'s holdout-fitted reference (``_value_reference.ceiling``), this is
not a model: each customer is scored by 5-fold CV on the holdout labels (the same folds), so it
measures what a sequence model can read from the calibration histories, not what one trained before
the calibration end would reach. Per date it reports, beside portrait and BG/NBD + Gamma-Gamma from
``training.customer_value.evaluate`` in the same run:

- the 7-leaf LightGBM reference (the best tree size at every date in ``customer_value``'s runs);
- a GRU over weekly bins from the first purchase date in the data to the calibration end (per bin:
  purchase days, log spend, log units, a not-yet-acquired flag and the position), with the first
  purchase day, first-day spend and units as static inputs; two heads, P(buy) (BCE) and the holdout
  spend rank (MSE); Adam, batch 512, up to 25 epochs with early stopping on 15% of each training fold;
- the rank-average stack of the two (no fitted weights, so no further use of the labels).

Each with AUC and Spearman (best of its heads, as ``ceiling`` does), bootstrap 95% intervals
(200 resamples of customers) and AUC within the one-purchase-day customers and the others.
The section ``customer_value_sequence`` of RESULTS.md is rewritten with the issue's targets and anchor.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import pandas as pd

from benchmarks._report import write_section
from benchmarks._value_reference import SIZES, Reference, bootstrap, folds, groups, reference_data, reference_oof
from benchmarks.customer_value import ANCHOR, CDNOW, TARGET

DEFAULT_DATES = "1997-09-30:39,1997-06-30:52,1997-12-31:25"
HIDDEN, EPOCHS, PATIENCE, BATCH = 32, 25, 4, 512


def weekly_bins(ref: Reference, res_days: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """Standardized ``[n, T, 5]`` bins ending at the calibration end and ``[n, 3]`` static inputs."""
    cal, end = ref.cal, ref.end
    start = cal["ts"].min().floor("D")
    T = int(np.ceil((end - start).days / res_days))
    code = pd.Index(ref.customers).get_indexer(cal["customer_id"].astype(str).to_numpy())
    day = (cal["ts"] - start).dt.days.to_numpy()
    days = pd.DataFrame({"c": code, "d": day, "b": T - 1 - ((end - start).days - 1 - day) // res_days,
                         "a": cal["amount"].to_numpy(float), "q": cal["quantity"].to_numpy(float)})
    per_day = days.groupby(["c", "d", "b"], as_index=False).agg(a=("a", "sum"), q=("q", "sum"))
    n = len(ref.customers)
    X = np.zeros((n, T, 5), np.float32)
    np.add.at(X[:, :, 0], (per_day.c, per_day.b), 1)
    np.add.at(X[:, :, 1], (per_day.c, per_day.b), per_day.a)
    np.add.at(X[:, :, 2], (per_day.c, per_day.b), per_day.q)
    X[:, :, 1:3] = np.log1p(np.clip(X[:, :, 1:3], 0, None))  # net refunds can take a bin below 0
    first = per_day.sort_values(["c", "d"]).groupby("c").first().reindex(range(n)).fillna(0)  # 0: no purchase yet
    X[:, :, 3] = np.arange(T)[None, :] < first["b"].to_numpy()[:, None]  # not yet acquired
    X[:, :, 4] = (np.arange(T)[::-1] / T)[None, :]  # position: lets the net know absolute time
    flat = X.reshape(-1, X.shape[2])
    X = (X - flat.mean(0)) / (flat.std(0) + 1e-6)
    S = np.stack([first["d"].to_numpy() / 90.0, np.log1p(first["a"].clip(lower=0).to_numpy()),
                  np.log1p(first["q"].clip(lower=0).to_numpy())], 1)
    S = (S - S.mean(0)) / (S.std(0) + 1e-6)
    return X.astype(np.float32), S.astype(np.float32)


def gru_oof(ref: Reference, seed: int = 0) -> dict[str, np.ndarray]:
    """Out-of-fold ``buy`` and ``rank`` predictions of the GRU (one seed per fold)."""
    import torch
    from scipy.stats import rankdata
    from torch import nn

    torch.set_num_threads(1)  # 2 threads were ~12x slower on the shared, loaded 2-core machine
    X, S = (torch.from_numpy(a) for a in weekly_bins(ref))
    buy = torch.from_numpy(ref.buy.astype(np.float32))
    rank = torch.from_numpy((rankdata(ref.spend) / len(ref.spend)).astype(np.float32))

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(X.shape[2], HIDDEN, batch_first=True)
            self.head = nn.Sequential(nn.Linear(HIDDEN + S.shape[1], HIDDEN), nn.ReLU(), nn.Linear(HIDDEN, 2))

        def forward(self, x: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            _, h = self.gru(x)
            o = self.head(torch.cat([h[-1], s], 1))
            return o[:, 0], torch.sigmoid(o[:, 1])

    bce = nn.BCEWithLogitsLoss()

    def loss(net: Net, i: torch.Tensor) -> torch.Tensor:
        logit, r = net(X[i], S[i])
        return bce(logit, buy[i]) + 4 * ((r - rank[i]) ** 2).mean()  # x4: the rank loss is ~4x smaller

    out = {"buy": np.zeros(len(buy)), "rank": np.zeros(len(buy))}
    for k, (tr, te) in enumerate(folds(len(buy))):
        rng = np.random.default_rng(seed + 100 * k)
        perm = rng.permutation(tr)
        va, fit = torch.from_numpy(perm[: int(0.15 * len(perm))]), perm[int(0.15 * len(perm)):]
        torch.manual_seed(seed + 100 * k)
        net = Net()
        opt = torch.optim.Adam(net.parameters(), lr=5e-3, weight_decay=1e-5)
        best, state, bad = np.inf, None, 0
        for _ in range(EPOCHS):
            net.train()
            order = rng.permutation(fit)
            for i in range(0, len(order), BATCH):
                opt.zero_grad()
                loss(net, torch.from_numpy(order[i:i + BATCH])).backward()
                opt.step()
            net.eval()
            with torch.no_grad():
                v = loss(net, va).item()
            if v < best - 1e-5:
                best, bad, state = v, 0, {n: t.clone() for n, t in net.state_dict().items()}
            elif (bad := bad + 1) >= PATIENCE:
                break
        net.load_state_dict(state)
        net.eval()
        with torch.no_grad():
            logit, r = net(X[te], S[te])
        out["buy"][te], out["rank"][te] = torch.sigmoid(logit).numpy(), r.numpy()
    return out


def stack(*oofs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Mean out-of-fold rank of each head over the methods."""
    from scipy.stats import rankdata

    return {h: np.mean([rankdata(o[h]) for o in oofs], 0) for h in ("buy", "rank")}


def measure(ref: Reference, oof: dict[str, np.ndarray], secs: float) -> dict:
    """AUC (buy head), Spearman (best head), their bootstrap intervals, AUC within the day groups."""
    from training.evaluation.classification import roc_auc
    from training.evaluation.value import spearman

    sp, head = max((spearman(ref.spend, oof[h]), h) for h in oof)
    return {"auc": roc_auc(ref.buy, oof["buy"]), "spearman": sp, **bootstrap(ref.spend, oof["buy"], oof[head]),
            **groups(ref, oof["buy"]), "secs": secs}


def run_date(tx: pd.DataFrame, end: str, weeks: int) -> tuple[dict, dict]:
    """Portrait and BG/NBD (same run), then the LightGBM reference, the GRU and their stack."""
    from training.customer_value import evaluate

    t = time.perf_counter()
    r = evaluate(tx, pd.Timestamp(end, tz="UTC"), weeks)
    peers = {"portrait": {"auc": r["auc"], "spearman": r["spearman"], "secs": time.perf_counter() - t},
             "bgnbd": r["baselines"]["bgnbd_gg_lifetimes"]}
    ref = reference_data(tx, end, weeks)
    rows = {}
    t = time.perf_counter()
    lgb = reference_oof(ref, SIZES[0])
    rows["lgbm"] = measure(ref, lgb, time.perf_counter() - t)
    t = time.perf_counter()
    gru = gru_oof(ref)
    rows["gru"] = measure(ref, gru, time.perf_counter() - t)
    rows["stack"] = measure(ref, stack(gru, {"buy": lgb["buy"], "rank": lgb["rank"]}), 0.0)
    for name, m in rows.items():
        print(f"{end} +{weeks}w {name}: AUC {m['auc']:.3f} [{m['auc_ci'][0]:.3f}, {m['auc_ci'][1]:.3f}], Spearman "
              f"{m['spearman']:.3f} [{m['spearman_ci'][0]:.3f}, {m['spearman_ci'][1]:.3f}], AUC within 1 day "
              f"{m['auc_one_day']:.3f}, {m['secs']:.0f} s", flush=True)
    return peers, rows


LABELS = {"lgbm": "LightGBM reference (7 leaves, portrait's + sequence features)",
          "gru": "GRU over weekly bins (h32, 1 seed)",
          "stack": "stack: mean out-of-fold rank, GRU + LightGBM reference"}


def table(end: str, weeks: int, peers: dict, rows: dict, first: bool) -> str:
    def ci(m: dict, k: str) -> str:
        return f"{m[k]:.3f} [{m[k + '_ci'][0]:.3f}, {m[k + '_ci'][1]:.3f}]"

    d = rows["lgbm"]
    out = [f"\n**Calibration end {end}, {weeks}-week holdout** ({d['one_day_share']:.1%} of customers have one "
           f"purchase day before it; holdout buy rate {d['buy_rate_one_day']:.1%} for them, "
           f"{d['buy_rate_multi_day']:.1%} for the others)\n",
           "| method | AUC [95% CI] | Spearman [95% CI] | AUC within: 1 purchase day / more | s |",
           "|---|---|---|---|---|",
           f"| portrait (`evaluate`, same run; a model) | {peers['portrait']['auc']:.3f} | "
           f"{peers['portrait']['spearman']:.3f} | - | {peers['portrait']['secs']:.0f} |",
           f"| BG/NBD + Gamma-Gamma (`lifetimes`, same run) | {peers['bgnbd']['auc']:.3f} | "
           f"{peers['bgnbd']['spearman']:.3f} | - | |"]
    for name, m in rows.items():
        out.append(f"| _{LABELS[name]}_ | {ci(m, 'auc')} | {ci(m, 'spearman')} | "
                   f"{m['auc_one_day']:.3f} / {m['auc_multi_day']:.3f} | {m['secs']:.0f} |")
    if first and end == "1997-09-30":
        out.append(f"| BG/NBD+GG anchor (issue #5) | {ANCHOR['auc']:.3f} | {ANCHOR['spearman']:.3f} | | |")
        out.append(f"| target (issue #5) | {TARGET['auc']} | {TARGET['spearman']} | | |")
    return "\n".join(out)


def parse_dates(text: str) -> list[tuple[str, int]]:
    out = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        end, _, weeks = item.partition(":")
        pd.Timestamp(end)  # fails loudly on a bad date
        out.append((end, int(weeks)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dates", default=DEFAULT_DATES, help="calibration end:holdout weeks, comma-separated")
    args = ap.parse_args()
    try:
        dates = parse_dates(args.dates)
    except ValueError as e:
        ap.error(f"--dates: expected END:WEEKS[,END:WEEKS...] such as 1997-09-30:39 ({e})")
    from features.sources.cdnow import load_transactions
    from features.transactions import prepare

    tx = prepare(load_transactions(CDNOW.resolve()), ts="date", amount="amount", quantity="quantity")
    t0 = time.perf_counter()
    parts = [table(end, weeks, *run_date(tx, end, weeks), first=i == 0) for i, (end, weeks) in enumerate(dates)]
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    intro = ("Holdout-fitted references (not models): every row below the two peers is fitted by 5-fold CV on "
             "the holdout labels it is scored on (`KFold(5, shuffle=True, random_state=0)`, the folds of "
             "`customer_value`'s reference). Spearman is the best of each method's heads; 95% percentile "
             f"intervals over 200 bootstrap resamples of customers (seed 0). Total {time.perf_counter() - t0:.0f} s, "
             f"load average {load} (shared machine: seconds are indicative).")
    cmd = "python -m benchmarks.customer_value_sequence" + ("" if args.dates == DEFAULT_DATES else f" --dates {args.dates}")
    write_section("customer_value_sequence", intro + "\n" + "\n".join(parts), cmd)


if __name__ == "__main__":
    main()
