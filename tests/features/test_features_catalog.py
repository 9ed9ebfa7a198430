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
