"""The tag catalog covers every tag column and the predicted tags, and rejects malformed entries."""

from __future__ import annotations

import pytest

from features.build import customer_columns
from features.tags import TAG_TYPES, load_catalog

PREDICTED = {"churn_risk", "churn_tier", "ltv", "ltv_tier", "propensity", "propensity_decile", "lookalike_audiences"}


def test_catalog_covers_every_tag_column_and_nothing_stale():
    catalog = {e["name"]: e for e in load_catalog()}
    tag_cols = {c[0] for c in customer_columns(["a", "b"]) if c[0].startswith("tag_")}
    assert tag_cols <= set(catalog)
    rules = {n for n, e in catalog.items() if e["source"] == "rule"}
    assert rules == tag_cols  # every rule entry is a real column
    assert PREDICTED <= {n for n, e in catalog.items() if e["type"] == "predicted" and e["source"] == "model"}
    assert {e["type"] for e in catalog.values()} <= set(TAG_TYPES)
    for e in catalog.values():
        assert e["definition"].strip() and e["owner"] and int(e["version"]) >= 1


def test_catalog_thresholds_match_the_tag_config():
    from dataclasses import fields

    from features.tags import TagConfig

    defaults = {f.name: f.default for f in fields(TagConfig)}
    for e in load_catalog():
        for key, value in (e.get("thresholds") or {}).items():
            assert key in defaults, f"{e['name']}: unknown threshold {key}"
            if isinstance(value, (int, float)):
                assert defaults[key] == value, f"{e['name']}: {key} documented {value}, configured {defaults[key]}"


def test_malformed_catalog_names_file_and_tag(tmp_path):
    bad = tmp_path / "cat.yaml"
    bad.write_text("tags:\n  - {name: x, type: attribute, definition: d, source: rule, version: 1}\n")
    with pytest.raises(ValueError, match=r"cat\.yaml.*'x'.*owner"):
        load_catalog(bad)
    bad.write_text("tags:\n  - {name: y, type: mood, definition: d, source: rule, owner: o, version: 1}\n")
    with pytest.raises(ValueError, match=r"cat\.yaml.*'y'.*mood"):
        load_catalog(bad)


@pytest.mark.parametrize("tag, kind", [("churn_tier", "churn"), ("ltv_tier", "ltv"), ("propensity_decile", "propensity")])
def test_catalog_cohorts_are_what_the_tag_functions_write(tag, kind):
    """The catalog's values and cohort shares (highest scores first) are what training/tags.py and the
    batch write-back (Cohorts over the scored population) produce; 1,000 distinct scores give exact shares."""
    import numpy as np

    from training.tags import Cohorts, TagConfig, cohort_shares, deciles, predicted_tags, tiers

    entry = {e["name"]: e for e in load_catalog()}[tag]
    declared = {str(k): float(v) for k, v in entry["cohorts"].items()}
    assert list(declared) == [str(v) for v in entry["values"]]  # values listed highest cohort first
    assert declared == pytest.approx(cohort_shares(kind))
    assert sum(declared.values()) == pytest.approx(1.0)
    scores = np.random.default_rng(0).permutation(np.linspace(0.001, 0.999, 1000))
    wide = predicted_tags([f"c{i}" for i in range(1000)], **{kind: scores})
    written = wide[tag].astype(str).to_numpy()
    batch = np.array(Cohorts.fit(kind, scores).tag(scores), dtype=object)
    assert (written == batch).all()  # the write-back and training/tags.py agree row by row
    order = np.argsort(-scores)
    start = 0
    for value, share in declared.items():  # each cohort is the next slice of the ranking, of its declared size
        n = round(share * 1000)
        assert set(written[order[start:start + n]]) == {value}, (value, start, n)
        start += n
    assert start == 1000
    one = Cohorts.fit(kind, scores)  # a single new score falls where the batch would put it
    assert one.tag(np.array([2.0]))[0] == next(iter(declared))
    assert one.tag(np.array([-1.0]))[0] == list(declared)[-1]
    spec = TagConfig().churn_tiers if kind == "churn" else TagConfig().ltv_tiers
    ref = deciles(scores).astype(str) if kind == "propensity" else tiers(scores, spec)
    assert (ref == batch).all()


@pytest.mark.parametrize("kind", ["churn", "ltv", "propensity"])
def test_one_score_gets_the_cohort_the_batch_gives_it(kind):
    """Cohorts.tag_one (a /score request) equals Cohorts.tag on every score: ties, edges, outside, NaN."""
    import numpy as np

    from training.tags import Cohorts

    rng = np.random.default_rng(0)
    population = np.concatenate([rng.random(997), np.full(40, 0.5), [0.0, 1.0]])
    cohorts = Cohorts.fit(kind, population)
    probes = np.concatenate([population, rng.random(500), [-1.0, 2.0, np.nan, np.inf, 0.5]])
    assert [cohorts.tag_one(float(x)) for x in probes] == cohorts.tag(probes)
    assert Cohorts.fit(kind, np.array([])).tag_one(0.3) is None


@pytest.mark.parametrize("kind", ["churn", "ltv", "propensity"])
def test_calibration_ties_are_broken_by_the_raw_score(kind):
    """Isotonic calibration maps ranges of raw scores to one probability: cohorts ranked by the calibrated
    score alone drifted from their shares (13/34/53 % for 20/30/50 %); ranked by the raw score they hold
    them, and one score's tag (a /score request) still equals the batch's."""
    import numpy as np

    from models.calibration import Calibrator
    from training.tags import Cohorts, cohort_shares

    rng = np.random.default_rng(1)
    raw = rng.random(1000)
    calibrated = Calibrator("isotonic").fit(raw, (raw + rng.normal(0, 0.3, 1000) > 0.6).astype(int)).transform(raw)
    assert len(np.unique(calibrated)) < 50  # flat stretches: many customers per probability
    cohorts = Cohorts.fit(kind, calibrated, keys=raw)
    tags = np.array(cohorts.tag(calibrated, raw), dtype=object)
    shares = {v: float(np.mean(tags == v)) for v in cohort_shares(kind)}
    assert shares == pytest.approx(cohort_shares(kind), abs=1e-9)
    probes = np.concatenate([raw, rng.random(300), [-1.0, 2.0, np.nan]])
    probe_scores = np.interp(probes, np.sort(raw), np.sort(calibrated))
    probe_scores[-1] = np.nan
    assert [cohorts.tag_one(float(s), float(k)) for s, k in zip(probe_scores, probes)] == cohorts.tag(probe_scores, probes)
    with pytest.raises(ValueError, match="key"):  # calibrated scores among raw ones would be placed wrongly
        cohorts.tag_one(0.5)
    assert Cohorts.fit(kind, calibrated).tag(calibrated) != list(tags)  # without the keys the ties skew the shares
