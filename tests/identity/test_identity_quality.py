"""OneID quality on a small generated dataset, against the generator's ground truth."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from features.identity.config import load_rules
from features.identity.graph import resolve_graph
from features.identity.hashing import DEMO_HMAC_KEY
from features.identity.prepare import hash_records
from features.identity.quality import pairwise_quality, quality_vs_truth


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    from features.sources.synthetic import generate
    from features.sources.synthetic_config import GeneratorConfig

    root = tmp_path_factory.mktemp("gen")
    generate(GeneratorConfig(people=4000, seed=11, months=2, kiosk_rate=0.05, people_per_kiosk=2000), root)
    return root


def test_pairwise_quality_counts_pairs():
    q = pairwise_quality(["a", "a", "a", "b"], [1, 1, 2, 2])
    assert q["precision"] == pytest.approx(1 / 3) and q["recall"] == pytest.approx(1 / 2)
    assert q["largest_cluster"] == 3 and q["largest_true_person"] == 2


def test_quality_on_generated_data_beats_the_naive_baseline(generated, make_runner):
    run = make_runner("gen")
    from features.identity.config import ResolveConfig
    from features.identity.resolve import resolve

    table = pq.read_table(generated / "raw" / "identity_records.parquet")
    summary = resolve(ResolveConfig(identity_dir=run.identity_dir, raw_dir=generated / "raw", demo_key=True))
    truth = pd.read_parquet(generated / "raw" / "_truth" / "truth_records.parquet")
    q = quality_vs_truth(pd.read_parquet(run.identity_dir / "record_map.parquet"), truth)
    assert q["precision"] >= 0.995 and q["recall"] >= 0.97, q
    assert q["largest_cluster"] <= q["largest_true_person"], q
    assert summary["links"]["device_id"]["refused_limit"] >= 1  # the kiosks were refused

    rules = load_rules()
    hr = hash_records(table, rules, DEMO_HMAC_KEY.encode())
    naive = resolve_graph(hr.keys, rules.priority, rules.limits, use_limits=False)
    key = pd.DataFrame({"source": hr.source.to_pandas(), "record_id": hr.record_id.to_pandas(), "g": naive.label})
    qn = quality_vs_truth(key, truth, label="g")
    assert qn["precision"] < q["precision"] and qn["largest_cluster"] > q["largest_cluster"], (qn, q)

    golden = pd.read_parquet(run.identity_dir / "golden.parquet")
    assert len(golden) == q["predicted_people"] and golden["n_records"].sum() == len(truth)
    assert golden["city"].notna().mean() > 0.5
