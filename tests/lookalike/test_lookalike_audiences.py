"""Audience store: rule and id audiences, static vs dynamic, overlap, TGI profile, CSV export."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.audience import AudienceError, AudienceStore, RuleError, overlap
from features.audience_profile import profile, top_traits


def snapshot(ts: str, n: int = 400, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "one_id": [f"OID{i:010d}" for i in range(n)],
        "event_timestamp": pd.Timestamp(ts, tz="UTC"),
        "age": rng.integers(15, 70, n).astype(float),
        "gender": rng.choice(["F", "M"], n),
        "tag_vip": rng.random(n) < 0.2,
        "spend": rng.exponential(100, n),
    })


@pytest.fixture()
def features() -> pd.DataFrame:
    old = snapshot("2026-06-01", seed=1)
    return pd.concat([old, snapshot("2026-07-01")], ignore_index=True)


def test_rule_audience_uses_latest_snapshot(tmp_path, features):
    store = AudienceStore(tmp_path)
    meta = store.create_rule("young_f", 'age < 30 and gender == "F"', features)
    latest = features[features.event_timestamp == features.event_timestamp.max()]
    expected = latest[(latest.age < 30) & (latest.gender == "F")].one_id.tolist()
    assert meta.size == len(expected) and meta.kind == "static"
    assert store.members("young_f").tolist() == expected
    assert meta.features_as_of.startswith("2026-07-01")


def test_static_is_frozen_dynamic_follows_features(tmp_path, features):
    store = AudienceStore(tmp_path)
    store.create_rule("s", "tag_vip", features)
    store.create_rule("d", "tag_vip", features, dynamic=True)
    newer = snapshot("2026-08-01", seed=9)
    assert store.members("s", newer).tolist() == store.members("s").tolist()
    assert store.members("d", newer).tolist() == newer[newer.tag_vip].one_id.tolist()
    assert store.refresh("d", newer).size == int(newer.tag_vip.sum())
    with pytest.raises(AudienceError, match="static"):
        store.refresh("s", newer)


def test_id_list_with_resolver_and_unknown_ids(tmp_path, features):
    store = AudienceStore(tmp_path)
    alias = {"crm:C1": "OID0000000001", "+86 138 0000 0000": "OID0000000002"}
    meta = store.create_ids("list", ["crm:C1", "+86 138 0000 0000", "crm:C1", "nobody"],
                            resolve=lambda ids: [alias.get(i) for i in ids])
    assert meta.size == 2 and meta.unresolved == 1 and meta.source == "ids"
    meta = store.create_ids("known", ["OID0000000003", "OID9999999999"], known=features.one_id)
    assert store.members("known").tolist() == ["OID0000000003"] and meta.unresolved == 1


def test_names_duplicates_and_bad_rules(tmp_path, features):
    store = AudienceStore(tmp_path)
    store.create_rule("a", "tag_vip", features)
    with pytest.raises(AudienceError, match="already exists; overwrite=True replaces it") as exc:
        store.create_rule("a", "tag_vip", features)
    assert "--replace" not in str(exc.value)  # a Python caller is told its argument, not a CLI option
    store.create_rule("a", "not tag_vip", features, overwrite=True)
    for bad in ("../etc", "a/b", "", ".hidden"):
        with pytest.raises(AudienceError, match="bad audience name"):
            store.create_rule(bad, "tag_vip", features)
    with pytest.raises(RuleError, match="unknown tag or feature 'vip'"):
        store.create_rule("b", "vip", features)
    assert not store.exists("b")
    with pytest.raises(AudienceError, match="no audience"):
        store.get("missing")
    assert [a.name for a in store.list()] == ["a"]
    store.delete("a")
    assert store.list() == []


def test_overlap_and_profile(tmp_path, features):
    store = AudienceStore(tmp_path)
    store.create_rule("f", 'gender == "F"', features)
    store.create_rule("young_f", 'gender == "F" and age < 30', features)
    table = overlap({"f": store.members("f"), "young_f": store.members("young_f")})
    row = table.iloc[0]
    assert row.intersection == row.size_b and row.share_of_b == 1.0 and 0 < row.jaccard < 1
    prof = profile(store.members("young_f"), features, columns=["gender", "age", "tag_vip"])
    f_row = prof[(prof.column == "gender") & (prof.value == "F")].iloc[0]
    assert f_row.audience_share == 1.0
    assert f_row.tgi == pytest.approx(100 / f_row.population_share)
    assert prof[prof.column == "gender"].value.tolist() == ["F"]  # no M in the audience
    assert top_traits(prof).iloc[0].tgi >= prof.tgi.median()
    for col in ("gender", "tag_vip"):  # shares sum to one in both groups
        assert prof[prof.column == col].audience_share.sum() == pytest.approx(1.0)


def test_export_csv_with_columns(tmp_path, features):
    store = AudienceStore(tmp_path / "aud")
    store.create_rule("vip", "tag_vip", features)
    out = pd.read_csv(store.export_csv("vip", tmp_path / "vip.csv", features, ["age", "gender"]))
    assert list(out.columns) == ["one_id", "age", "gender"] and len(out) == store.get("vip").size
    with pytest.raises(AudienceError, match="unknown column"):
        store.export_csv("vip", tmp_path / "x.csv", features, ["nope"])


@pytest.mark.parametrize("encoding, head", [("utf-8", "one_id".encode()), ("utf-8-sig", b"\xef\xbb\xbfone_id"),
                                            ("gbk", "one_id".encode())])
def test_export_csv_encoding_for_excel(tmp_path, features, encoding, head):
    feats = features.assign(city=np.where(features.index % 2, "上海", "北京"))
    store = AudienceStore(tmp_path / "aud")
    store.create_rule("vip", "tag_vip", feats)
    path = store.export_csv("vip", tmp_path / "vip.csv", feats, ["city"], encoding=encoding)
    assert path.read_bytes().startswith(head)
    back = pd.read_csv(path, encoding="utf-8-sig" if encoding.startswith("utf") else encoding)
    assert list(back.columns) == ["one_id", "city"] and set(back["city"]) <= {"上海", "北京"}


def test_export_csv_encoding_errors_name_the_value_and_keep_the_old_file(tmp_path, features):
    feats = features.assign(city="𠮷野家")  # outside GBK
    store = AudienceStore(tmp_path / "aud")
    store.create_rule("vip", "tag_vip", feats)
    old = tmp_path / "vip.csv"
    old.write_text("previous export\n")
    with pytest.raises(AudienceError, match="cannot hold '𠮷'.*utf-8-sig"):
        store.export_csv("vip", old, feats, ["city"], encoding="gbk", overwrite=True)
    with pytest.raises(AudienceError, match="unknown encoding 'latin-9x'"):
        store.export_csv("vip", old, feats, ["city"], encoding="latin-9x", overwrite=True)
    assert old.read_text() == "previous export\n" and [p.name for p in tmp_path.iterdir() if p.is_file()] == ["vip.csv"]
