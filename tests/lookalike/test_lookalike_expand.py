"""Expansion end to end: features on disk -> population -> expand with reach/filter -> saved audience with
lineage; and the CLI through a real MLflow registry (train, audience create/show/export/overlap, expand)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.audience import AudienceError, AudienceStore
from features.audience_lookalike import expand, expand_audience, explain, parse_reach, tag_rows
from models.lookalike import SeedTooSmall
from training.lookalike import LookalikeConfig, build


@pytest.fixture(scope="module")
def world(tmp_path_factory, lal_builder):
    """600 customers in 3 interest groups over 60 items; features with a group tag."""
    return lal_builder(tmp_path_factory.mktemp("lal"))


@pytest.fixture(scope="module")
def population(world):
    root = world[0]
    pop, metrics = build(LookalikeConfig(features_dir=str(root / "features"), factors=8, als_iterations=5))
    assert metrics["customers"] == 600 and metrics["index_recall_at_10"] >= 0.95
    return pop


def test_expand_respects_seeds_reach_and_filter(world, population):
    root, ids, group = world
    feats = pd.read_parquet(root / "features" / "customer_features.parquet")
    seeds = ids[group == 1][:80]
    res = expand(population, seeds, reach="10%", features=feats, filter_rule="age >= 30")
    got = res.members["one_id"]
    assert not got.isin(seeds).any()
    eligible = feats[(feats.age >= 30) & ~feats.one_id.isin(seeds)]
    assert res.eligible == len(eligible) and len(got) == round(0.1 * len(eligible))
    assert got.isin(eligible.one_id).all()
    assert (group[population.rows_of(got)] == 1).mean() >= 0.8
    assert res.members["percentile"].is_monotonic_decreasing


def test_reach_parsing_and_limits():
    assert parse_reach("5%", 10_000) == 500 and parse_reach(" 1 % ", 10_000) == 100 and parse_reach(250, 10) == 250
    for bad in ("50%", "0.5%", "abc", "-3", 0):
        with pytest.raises(AudienceError):
            parse_reach(bad, 10_000)


def test_minimum_seed_and_unknown_seed_ids(population, world):
    ids = world[1]
    with pytest.raises(SeedTooSmall, match="at least 50"):
        expand(population, list(ids[:49]) + ["OIDnobody"] * 10, reach=20)
    res = expand(population, list(ids[:60]) + ["OIDnobody"], reach=20)
    assert res.n_seeds == 60 and res.n_seeds_unknown == 1


def test_saved_with_lineage_and_explained(tmp_path, world, population):
    root, ids, group = world
    feats = pd.read_parquet(root / "features" / "customer_features.parquet")
    store = AudienceStore(tmp_path)
    store.create_rule("group_c", 'tag_group == "c" and spend > 20', feats)
    meta, res = expand_audience(store, population, "group_c", 100, feats, model_version="7")
    assert meta.name == "group_c_lookalike" and meta.source == "lookalike" and meta.size == 100
    assert meta.lineage["seed_audience"] == "group_c" and meta.lineage["model_version"] == "7"
    assert meta.lineage["seed_rule"] == 'tag_group == "c" and spend > 20'
    saved = store.frame("group_c_lookalike")
    assert list(saved.columns) == ["one_id", "score", "percentile"]
    assert not saved.one_id.isin(store.members("group_c")).any()
    why = explain(store.members("group_c"), saved.one_id, feats, columns=["tag_group"])
    top = why.iloc[0]
    rest_c = feats[(feats.tag_group == "c") & ~feats.one_id.isin(store.members("group_c"))]
    assert saved.one_id.isin(rest_c.one_id).sum() >= 0.9 * len(rest_c)  # nearly every other "c" is found
    assert top.value == "c" and top.seed_tgi == pytest.approx(300)
    tags = tag_rows(store, "group_c_lookalike")  # written back as a tag: the tag-history row shape
    assert len(tags) == 100 and set(tags.tag) == {"audience_group_c_lookalike"} and (tags.version == "7").all()
    assert tags.score.tolist() == saved.score.tolist()
    assert top.expansion_tgi >= 0.9 * 300 * len(rest_c) / 100  # share len(rest_c)/100 over a 1/3 base rate


def test_cli_train_create_expand_show_export(tmp_path, world, monkeypatch):
    from portrait.cli import app

    root = world[0]
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(root))
    monkeypatch.setenv("PORTRAIT_MLRUNS_DIR", str(tmp_path / "mlruns"))
    monkeypatch.delenv("PORTRAIT_MLFLOW_URI", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    run = CliRunner().invoke
    r = run(app, ["train", "lookalike", "--factors", "8", "--json"])
    assert r.exit_code == 0, r.output
    assert run(app, ["audience", "create", "b", "--rule", 'tag_group == "b"', "--replace"]).exit_code == 0
    r = run(app, ["audience", "create", "bad", "--rule", "tag_grup == 'b'"])
    assert r.exit_code == 2 and "did you mean tag_group" in r.output
    r = run(app, ["lookalike", "expand", "--seed", "b", "--reach", "50", "--filter", 'gender == "F"', "--replace",
                  "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout[r.stdout.index("{"):])
    assert out["audience"]["size"] == 50 and out["audience"]["lineage"]["model_version"] == "1"
    assert out["explanation"][0]["value"] == "b"
    r = run(app, ["audience", "overlap", "b", "b_lookalike", "--json"])
    assert json.loads(r.stdout[r.stdout.index("["):])[0]["intersection"] == 0
    assert run(app, ["audience", "show", "b_lookalike", "--columns", "tag_group"]).exit_code == 0
    r = run(app, ["audience", "export", "b_lookalike", "-o", str(tmp_path / "b.csv"), "--columns", "gender"])
    assert r.exit_code == 0
    exported = pd.read_csv(tmp_path / "b.csv")
    assert len(exported) == 50 and (exported.gender == "F").all()
