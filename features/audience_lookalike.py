"""Lookalike expansion of an audience: seeds -> the most similar other customers, explained.

The plain functions serving and the CLI call. A :class:`models.lookalike.LookalikePopulation`
(built by ``training/lookalike.py`` and registered in MLflow as ``lookalike``) scores the
whole population against the seeds; this module turns audiences into seed rows, applies
the eligibility rule, cuts the requested reach, and explains the result with the TGI
profile of the expansion next to the seed's.

Example::

    result = expand(population, seed_ids, reach="5%", features=feats, filter_rule="age >= 18")
    result.members            # one_id, score, percentile (best first; seeds never included)
    audience, result = expand_audience(store, population, "responders", "5%", feats, name="responders_lal")
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.audience import Audience, AudienceError, AudienceExists, AudienceStore, latest_snapshot
from features.audience_profile import profile
from features.audience_rules import evaluate, validate

REACH = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(%?)\s*$")
REACH_PERCENT = (1.0, 10.0)  # ad platforms offer 1-10% of the eligible population


@dataclass(frozen=True)
class Expansion:
    members: pd.DataFrame  # one_id, score, percentile; best first
    method: str  # scoring method actually used
    n_seeds: int  # seeds found in the population
    n_seeds_unknown: int  # seed ids the population does not know
    eligible: int  # non-seed customers passing the filter
    reach: int  # members requested (after resolving a percentage)
    seconds: float  # scoring + selection time
    params: dict = field(default_factory=dict)  # reach text, filter, method requested
    warnings: tuple[str, ...] = ()  # e.g. a count above the eligible population (capped)


def parse_reach(reach: int | str, eligible: int) -> int:
    """A count (``5000``) or a share of the eligible population (``"5%"``, 1-10%)."""
    if isinstance(reach, (int, np.integer)):
        count = int(reach)
    else:
        m = REACH.match(str(reach))
        if not m:
            raise AudienceError(f"reach must be a count (5000) or a percentage (5%), got {reach!r}")
        value, pct = float(m.group(1)), m.group(2) == "%"
        if pct:
            lo, hi = REACH_PERCENT
            if not lo <= value <= hi:
                raise AudienceError(f"reach {reach!r}: a percentage must be between {lo:g}% and {hi:g}% "
                                    "of the eligible population (or give a count)")
            count = int(round(eligible * value / 100.0))
        else:
            count = int(value)
    if count <= 0:
        raise AudienceError(f"reach must be positive, got {reach!r}")
    return count


def eligible_mask(population: Any, features: pd.DataFrame | None, filter_rule: str | None) -> np.ndarray | None:
    """Mask over the population's rows of the customers matching ``filter_rule`` (None: everyone)."""
    if not filter_rule:
        return None
    if features is None:
        raise AudienceError("a filter rule needs the features table")
    snap = latest_snapshot(features)
    tree = validate(filter_rule, snap.columns)
    ok = snap.loc[evaluate(tree, snap), "one_id"].astype(str)
    return pd.Index(population.one_ids).isin(ok)


def expand(population: Any, seeds: Any, reach: int | str, features: pd.DataFrame | None = None,
           filter_rule: str | None = None, method: str | None = None, eligible: np.ndarray | None = None) -> Expansion:
    """Top customers most similar to ``seeds`` (one_ids), never the seeds themselves.

    ``reach`` is a count or 1-10% of the eligible population (non-seed customers that
    pass ``filter_rule``, a rule over ``features``; ``eligible`` may pass a precomputed
    mask instead). ``method`` overrides the population model's choice. Raises
    :class:`models.lookalike.SeedTooSmall` below the model's minimum seed size.
    """
    seed_ids = pd.unique(pd.Series(list(seeds), dtype=object).astype(str))
    rows = population.rows_of(seed_ids)
    mask = eligible if eligible is not None else eligible_mask(population, features, filter_rule)
    base = np.ones(len(population), dtype=bool) if mask is None else mask.copy()
    base[rows] = False
    n_eligible = int(base.sum())
    if n_eligible == 0:  # before parsing the reach: "5%" of nobody would read "reach must be positive"
        others = len(population) - len(rows)
        if filter_rule and others:
            raise AudienceError(f"the expansion is empty: the filter leaves none of the {others:,} non-seed customers "
                                f"eligible (filter {filter_rule!r}); loosen it")
        raise AudienceError(f"the expansion is empty: no eligible customer, all {len(population):,} customers "
                            "of the model are seeds")
    k = parse_reach(reach, n_eligible)
    warnings = []
    if k > n_eligible:
        # capped and said, not refused: a marketer asking for "up to N" on a budget wants the audience
        # delivered, and all eligible customers ranked best first is still the right answer
        where = f" under the filter {filter_rule!r}" if filter_rule else ""
        warnings.append(f"reach {reach} asks for {k:,} customers but only {n_eligible:,} are eligible{where}; "
                        f"the audience has all {n_eligible:,}")
        k = n_eligible
    start = time.perf_counter()
    picked, scores, pct = population.model.expand(rows, k, eligible=base, method=method)
    seconds = time.perf_counter() - start
    members = pd.DataFrame({"one_id": population.one_ids[picked], "score": scores.astype(np.float64),
                            "percentile": np.round(pct, 3)})
    return Expansion(members=members, method=population.model.last_method_, n_seeds=len(rows),
                     n_seeds_unknown=len(seed_ids) - len(rows), eligible=n_eligible, reach=k, seconds=seconds,
                     params={"reach": str(reach), "filter": filter_rule, "method": method or population.model.method},
                     warnings=tuple(warnings))


def explain(seed_ids: Any, expanded_ids: Any, features: pd.DataFrame, columns: list[str] | None = None,
            top: int = 15) -> pd.DataFrame:
    """Seed and expansion TGI side by side: the traits that made these customers alike.

    Rows are the (column, value) pairs most over-represented in the seed (audience share
    >= 5%), with ``seed_share, seed_tgi, expansion_share, expansion_tgi, population_share``.
    """
    seed = profile(seed_ids, features, columns=columns)
    grown = profile(expanded_ids, features, columns=columns)
    both = seed.merge(grown, on=["column", "value", "population_share"], how="left", suffixes=("_seed", "_expansion"))
    for col in ("audience_share_expansion", "tgi_expansion"):  # a value absent from the expansion: share 0
        both[col] = both[col].astype("float64").fillna(0.0)
    both = both[(both["audience_share_seed"] >= 0.05) & (both["value"] != "(missing)")]
    both = both.sort_values("tgi_seed", ascending=False).head(top)
    return both.rename(columns={"audience_share_seed": "seed_share", "tgi_seed": "seed_tgi",
                                "audience_share_expansion": "expansion_share", "tgi_expansion": "expansion_tgi"})[
        ["column", "value", "seed_share", "seed_tgi", "expansion_share", "expansion_tgi", "population_share"]
    ].reset_index(drop=True)


def expand_audience(store: AudienceStore, population: Any, seed: str, reach: int | str,
                    features: pd.DataFrame | None = None, filter_rule: str | None = None, name: str | None = None,
                    method: str | None = None, model_version: str | None = None,
                    overwrite: bool = False, check: Callable[[Expansion], Any] | None = None) -> tuple[Audience, Expansion]:
    """Expand the saved audience ``seed`` and save the result as a static audience with lineage.

    Nothing is saved unless everything succeeded: the target name is checked first, and ``check``
    (e.g. the CLI's explanation) runs on the result before it is written.
    """
    seed_meta = store.get(seed)
    target = name or f"{seed}_lookalike"
    if store.exists(target) and not overwrite:  # also checks the name; before the expansion's work
        raise AudienceExists(target)
    seed_ids = store.members(seed, features)
    result = expand(population, seed_ids, reach, features, filter_rule, method)
    if check is not None:
        check(result)
    lineage = {"seed_audience": seed, "seed_kind": seed_meta.kind, "seed_rule": seed_meta.rule,
               "seed_size": int(len(seed_ids)), "seeds_in_model": result.n_seeds, "method": result.method,
               "model_version": model_version or population.info.get("model_version"),
               "embedding": population.info.get("embedding"), "eligible": result.eligible, **result.params}
    meta = store.save_members(target, result.members, source="lookalike", lineage=lineage, overwrite=overwrite,
                              description=f"lookalike of {seed} ({result.params['reach']})")
    return meta, result


TAG_HISTORY_COLUMNS = ["one_id", "tag", "value", "score", "model", "version", "date", "scored_at"]


def tag_rows(store: AudienceStore, name: str, tag: str | None = None, scored_at: Any = None) -> pd.DataFrame:
    """The audience as predicted-tag rows (the shape of ``<data>/tags/history.parquet``) for write-back.

    One row per member: ``tag`` (default ``audience_<name>``), value ``"member"``, the
    lookalike score when there is one, model ``lookalike`` (or the audience source) and
    the model version from the lineage.
    """
    meta = store.get(name)
    members = store.frame(name)
    when = pd.Timestamp(scored_at if scored_at is not None else pd.Timestamp.now(tz="UTC")).tz_convert("UTC")
    score = members["score"].astype("float64") if "score" in members else pd.Series(np.nan, index=members.index)
    return pd.DataFrame({
        "one_id": members["one_id"].astype(str).to_numpy(), "tag": tag or f"audience_{name}",
        "value": pd.Series(["member"] * len(members), dtype="string"), "score": score.to_numpy(),
        "model": "lookalike" if meta.source == "lookalike" else f"audience:{meta.source}",
        "version": str(meta.lineage.get("model_version") or ""), "date": when.date().isoformat(),
        "scored_at": when.as_unit("us"),
    }, columns=TAG_HISTORY_COLUMNS)
