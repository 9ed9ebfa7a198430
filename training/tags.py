"""Predicted tags: model scores turned into the cohorts marketers use.

Cohorts are percentiles of the scored population (ties share a cohort), so they stay
meaningful whatever the score scale:

- churn: ``churn_tier`` high = top 20% of risk, medium = next 30%, low = the rest;
- LTV: ``ltv_tier`` top = top 10%, high = next 20%, mid = next 30%, low = the rest;
- propensity: ``propensity_decile`` 1 (highest) .. 10.

The same cohorts tag the batch write-back (``serving.writeback.score_all``, the whole scored
population) and can tag one customer later: :class:`Cohorts` keeps the population's scores,
so a score is placed exactly where the batch put it (``Cohorts.fit(kind, s).tag(s)`` equals the
batch tags). The catalog (``features/tag_catalog.yaml``, ``cohorts:``) declares the same shares.

A calibrated model ranks by ``keys``, its uncalibrated (raw) score: isotonic calibration maps
ranges of raw scores to one probability, and customers tied on it would share a cohort (13/34/53 %
instead of 20/30/50 % in one run). The calibrators never reverse the raw order, so ranking by the
raw score is ranking by the calibrated one with its ties broken by the raw one; the probability
shown stays the calibrated score.

Each row carries ``model_name``, ``model_version`` and ``scored_at``. The serving batch
scorer writes them back (Feast push + ``<data>/tags/history.parquet``); the wide frame of
:func:`predicted_tags` has the columns of ``features.store.PREDICTED_COLUMNS``.

Example::

    tags = predicted_tags(one_ids, churn=risk, ltv=value, propensity=p,
                          versions={"churn": "3", "ltv": "2", "propensity": "1"})
"""

from __future__ import annotations

import bisect
import itertools
import math

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class TagConfig:
    churn_tiers: tuple[tuple[str, float], ...] = (("high", 0.20), ("medium", 0.30), ("low", 0.50))  # top share first
    ltv_tiers: tuple[tuple[str, float], ...] = (("top", 0.10), ("high", 0.20), ("mid", 0.30), ("low", 0.40))
    n_deciles: int = 10


TAG_OF = {"churn": "churn_tier", "ltv": "ltv_tier", "propensity": "propensity_decile"}  # model kind -> tag


def cohort_shares(kind: str, config: TagConfig = TagConfig()) -> dict[str, float]:
    """The tag values of ``kind`` in order (highest scores first) with their population shares."""
    if kind == "churn":
        return {n: p for n, p in config.churn_tiers}
    if kind == "ltv":
        return {n: p for n, p in config.ltv_tiers}
    if kind == "propensity":
        return {str(d): 1.0 / config.n_deciles for d in range(1, config.n_deciles + 1)}
    raise ValueError(f"no predicted tag for model kind {kind!r}; choose from {sorted(TAG_OF)}")


def _tier_of_share(share: np.ndarray, spec: tuple[tuple[str, float], ...]) -> np.ndarray:
    edges = np.cumsum([p for _, p in spec])
    if abs(edges[-1] - 1.0) > 1e-9:
        raise ValueError(f"tier shares must add up to 1, got {edges[-1]:.3f}")
    idx = np.searchsorted(edges, share - 1e-12, side="left")
    names = np.array([n for n, _ in spec], dtype=object)
    return names[np.minimum(idx, len(names) - 1)]


def _decile_of_share(share: np.ndarray, n: int) -> np.ndarray:
    return np.clip(np.ceil(share * n - 1e-9), 1, n).astype(np.int64)


@dataclass(frozen=True)
class Cohorts:
    """A model's percentile cohorts fitted on a scored population; tags any score, one or many.

    A score's top share is the share of the population scoring at least as high, so a
    population member gets exactly its batch tag and a new score the cohort it would join.
    """

    kind: str  # churn / ltv / propensity
    population: np.ndarray  # the population's finite ranking keys (``keys`` when fitted with them, else scores), sorted
    config: TagConfig = TagConfig()
    keyed: bool = False  # fitted on keys (raw scores): tagging then needs each score's key too

    @classmethod
    def fit(cls, kind: str, scores: np.ndarray, config: TagConfig = TagConfig(),
            keys: np.ndarray | None = None) -> "Cohorts":
        """Cohorts of the population ``scores``, ranked by ``keys`` (the raw scores of a calibrated model) if given."""
        cohort_shares(kind, config)  # an unknown kind fails here
        s = np.asarray(scores, dtype=np.float64)
        k = s if keys is None else np.asarray(keys, dtype=np.float64)
        if k.shape != s.shape:
            raise ValueError(f"{len(k)} ranking keys for {len(s)} scores")
        return cls(kind, np.sort(k[np.isfinite(s) & np.isfinite(k)]), config, keys is not None)

    def _keys(self, scores: np.ndarray, keys: np.ndarray | None) -> np.ndarray:
        if keys is None:
            if self.keyed:  # calibrated scores placed among raw ones would land in the wrong cohorts
                raise ValueError("these cohorts rank by raw scores: pass each score's key")
            return scores
        return np.asarray(keys, dtype=np.float64)

    def share(self, scores: np.ndarray, keys: np.ndarray | None = None) -> np.ndarray:
        return _share_in(self.population, self._keys(np.asarray(scores, dtype=np.float64), keys))

    def tag_one(self, score: float, key: float | None = None) -> str | None:
        """:meth:`tag` of one score in plain Python (a /score request: ~2 us instead of ~10 us), same float steps."""
        if key is None:
            if self.keyed:
                raise ValueError("these cohorts rank by raw scores: pass the score's key")
            key = score
        n = len(self.population)
        if not n or not math.isfinite(score) or not math.isfinite(key):
            return None
        share = (n - int(np.searchsorted(self.population, key, side="left"))) / n
        if self.kind == "propensity":
            k = self.config.n_deciles
            return str(min(max(math.ceil(share * k - 1e-9), 1), k))
        spec = self.config.churn_tiers if self.kind == "churn" else self.config.ltv_tiers
        edges = list(itertools.accumulate(p for _, p in spec))
        return spec[min(bisect.bisect_left(edges, share - 1e-12), len(spec) - 1)][0]

    def tag(self, scores: np.ndarray, keys: np.ndarray | None = None) -> list[str | None]:
        """The tag value per score (as text, deciles too); None for a non-finite score or key, or no population."""
        s = np.asarray(scores, dtype=np.float64)
        k = self._keys(s, keys)
        if not len(self.population):
            return [None] * len(s)
        share = _share_in(self.population, k)
        if self.kind == "propensity":
            values = [str(d) for d in _decile_of_share(share, self.config.n_deciles).tolist()]
        else:
            spec = self.config.churn_tiers if self.kind == "churn" else self.config.ltv_tiers
            values = list(_tier_of_share(share, spec))
        return [v if ok else None for v, ok in zip(values, (np.isfinite(s) & np.isfinite(k)).tolist())]


def _share_in(population: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Per score, the share of the sorted ``population`` scoring at least as high (ties share the value)."""
    n = len(population)
    return (n - np.searchsorted(population, scores, side="left")) / max(n, 1)


def top_share(score: np.ndarray) -> np.ndarray:
    """Share of the population scoring at least as high as each row (0 < s <= 1; ties share the value)."""
    score = np.asarray(score, dtype=np.float64)
    if len(score) == 0:
        return score
    if not np.isfinite(score).all():
        raise ValueError("scores must be finite to tag them")
    return _share_in(np.sort(score), score)


def tiers(score: np.ndarray, spec: tuple[tuple[str, float], ...]) -> np.ndarray:
    """Tier name per row: the first tier whose cumulative top share covers the row's top share."""
    return _tier_of_share(top_share(score), spec)


def deciles(score: np.ndarray, n: int = 10) -> np.ndarray:
    """1 (highest scores) .. n, by top share."""
    return _decile_of_share(top_share(score), n)


def predicted_tags(
    one_ids: pd.Series | np.ndarray | list,
    churn: np.ndarray | None = None,
    ltv: np.ndarray | None = None,
    propensity: np.ndarray | None = None,
    versions: dict[str, str] | None = None,
    scored_at: pd.Timestamp | None = None,
    config: TagConfig = TagConfig(),
) -> pd.DataFrame:
    """The wide predicted-tag frame for the scores given (missing models leave their columns out).

    ``versions`` maps model name to version; ``model_name``/``model_version`` list them as
    ``"churn,ltv"`` / ``"churn:3,ltv:2"`` so one row records every model that produced it.
    """
    n = len(one_ids)
    out = pd.DataFrame({"one_id": pd.Series(np.asarray(one_ids), dtype="string")})
    for name, arr in (("churn", churn), ("ltv", ltv), ("propensity", propensity)):
        if arr is not None and len(arr) != n:
            raise ValueError(f"{name} scores: {len(arr)} values for {n} customers")
    if churn is not None:
        out["churn_risk"] = np.asarray(churn, dtype=np.float64)
        out["churn_tier"] = tiers(out["churn_risk"].to_numpy(), config.churn_tiers)
    if ltv is not None:
        out["ltv"] = np.asarray(ltv, dtype=np.float64)
        out["ltv_tier"] = tiers(out["ltv"].to_numpy(), config.ltv_tiers)
    if propensity is not None:
        out["propensity"] = np.asarray(propensity, dtype=np.float64)
        out["propensity_decile"] = deciles(out["propensity"].to_numpy(), config.n_deciles)
    used = [m for m, arr in (("churn", churn), ("ltv", ltv), ("propensity", propensity)) if arr is not None]
    versions = versions or {}
    out["model_name"] = ",".join(used)
    out["model_version"] = ",".join(f"{m}:{versions.get(m, '?')}" for m in used)
    ts = pd.Timestamp.now(tz="UTC") if scored_at is None else pd.Timestamp(scored_at)
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    out["scored_at"] = pd.Series([ts] * n, dtype="datetime64[us, UTC]")
    return out


def long_tags(wide: pd.DataFrame) -> pd.DataFrame:
    """One row per (customer, tag) — ``one_id, tag, value, score, model, version, scored_at`` — for tag history."""
    parts = []
    versions = dict(v.split(":", 1) for v in str(wide["model_version"].iloc[0]).split(",") if ":" in v) if len(wide) else {}
    for tag, score, model in (("churn_tier", "churn_risk", "churn"), ("ltv_tier", "ltv", "ltv"),
                              ("propensity_decile", "propensity", "propensity")):
        if tag in wide.columns:
            parts.append(pd.DataFrame({"one_id": wide["one_id"], "tag": tag, "value": wide[tag].astype(str),
                                       "score": wide[score], "model": model, "version": versions.get(model, "?"),
                                       "scored_at": wide["scored_at"]}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["one_id", "tag", "value", "score", "model", "version", "scored_at"])
