"""The build writes the contract: files, column order and types, µs UTC timestamps, stacked snapshots."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from features.build import ITEM_COLUMNS, KEYS, build, customer_columns, read_meta

ARROW = {"int64": pa.int64(), "float64": pa.float64(), "string": pa.string(), "bool": pa.bool_()}


def test_build_writes_the_contract(tmp_path, h):
    w = h.random_world(tmp_path / "data", n_people=30, seed=7)
    raw, ident = w.write()
    cutoffs = [h.CUTOFF - pd.Timedelta(days=60), h.CUTOFF]
    res = build(raw, ident, tmp_path / "features", cutoffs)
    cols = customer_columns(res.categories)
    schema = pq.read_schema(res.paths["customer_features"])
    assert schema.names == [*KEYS, *(c[0] for c in cols)]
    assert schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")
    for name, dtype, _ in cols:
        assert schema.field(name).type == ARROW[dtype], name
    item_schema = pq.read_schema(res.paths["item_features"])
    assert item_schema.names == ["item_id", "event_timestamp", *(c[0] for c in ITEM_COLUMNS)]
    cust = pd.read_parquet(res.paths["customer_features"])
    assert sorted(cust["event_timestamp"].unique()) == cutoffs  # one snapshot per cutoff, stacked
    assert not cust.duplicated(list(KEYS)).any()
    assert res.categories == ["books", "shoes", "toys"]  # by events, completed from the catalog; alphabetical
    inter = pd.read_parquet(res.paths["interactions"])
    assert inter["ts"].dtype == "datetime64[us, UTC]" and inter["ts"].max() < h.CUTOFF
    assert set(inter["event_type"]) <= {"view", "click", "favorite", "add_to_cart", "purchase"}
    assert (inter.loc[inter["event_type"] == "purchase", "weight"] == 5.0).all()
    n_item_events = sum(1 for e in w.events if e["event_type"] not in ("search", "coupon_use"))
    n_lines_without_event = len(w.lines)  # random_world's orders have no matching purchase event
    assert len(inter) == n_item_events + n_lines_without_event
    meta = read_meta(tmp_path / "features")
    assert meta["customer_columns"] == [c[0] for c in cols] and meta["rows"]["customer_features"] == len(cust)


def test_order_lines_without_a_purchase_event_become_interactions(tmp_path, h):
    w = h.World(tmp_path / "data")
    w.order("p1", h.ago(3), 20.0, items=("I1", "I2"))
    w.event("p1", "purchase", h.ago(3), item="I1")  # the same purchase, also seen as an event
    res = build(*w.write(), tmp_path / "features", [h.CUTOFF])
    inter = pd.read_parquet(res.paths["interactions"]).sort_values("item_id")
    assert inter[["item_id", "event_type"]].values.tolist() == [["I1", "purchase"], ["I2", "purchase"]]


def test_cli_build_default_cutoff_and_json(tmp_settings, h, monkeypatch):
    from portrait.cli import app

    w = h.World(tmp_settings.data_dir)
    w.event("p1", "view", pd.Timestamp("2026-03-04 17:00", tz="UTC"))
    w.order("p2", pd.Timestamp("2026-03-05 08:00", tz="UTC"), 12.0)
    w.write()
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_settings.data_dir))
    result = CliRunner().invoke(app, ["features", "build", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout[result.stdout.index("{"):])
    assert summary["cutoffs"] == ["2026-03-06T00:00:00+00:00"]  # midnight after the last fact
    assert summary["rows"]["customer_features"] == 2
    assert (tmp_settings.features_dir / "customer_features.parquet").exists()


def test_event_items_outside_the_catalog_count_for_customers_only(tmp_path, h):
    w = h.World(tmp_path / "data")
    w.event("p1", "view", h.ago(2), item="I1")
    w.event("p1", "view", h.ago(1), item="GHOST")
    res = build(*w.write(), tmp_path / "features", [h.CUTOFF])
    assert res.unmapped["event_items_not_in_catalog"] == 1
    cust = pd.read_parquet(res.paths["customer_features"]).set_index("one_id")
    assert cust.loc["p1", "n_view_7d"] == 2
    assert pd.read_parquet(res.paths["interactions"])["item_id"].tolist() == ["I1"]
    assert "GHOST" not in set(pd.read_parquet(res.paths["item_features"])["item_id"])


def test_append_keeps_other_snapshots_and_replaces_the_same_cutoff(tmp_path, h):
    w = h.random_world(tmp_path / "data", n_people=15, seed=11)
    raw, ident = w.write()
    out = tmp_path / "features"
    a, b = h.CUTOFF - pd.Timedelta(days=30), h.CUTOFF
    build(raw, ident, out, [a])
    first = pd.read_parquet(out / "customer_features.parquet")
    build(raw, ident, out, [b], append=True)
    build(raw, ident, out, [a], append=True)  # recomputing a cutoff replaces it, never duplicates
    both = pd.read_parquet(out / "customer_features.parquet")
    assert sorted(both["event_timestamp"].unique()) == [a, b] and not both.duplicated(list(KEYS)).any()
    pd.testing.assert_frame_equal(both[both["event_timestamp"] == a].reset_index(drop=True), first)
    assert read_meta(out)["cutoffs"] == [a.isoformat(), b.isoformat()]
    assert sorted(pd.read_parquet(out / "item_features.parquet")["event_timestamp"].unique()) == [a, b]
