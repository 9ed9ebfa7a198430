"""Golden-record cities: one spelling per city, so audience rules on ``city`` find everyone."""

from __future__ import annotations

import pandas as pd
import pytest

from features.identity.config import RulesError, load_rules
from features.identity.places import clean_cities, fold_city
from features.identity.tables import read_identity_table
from tests.identity.test_identity_golden import _profiles


@pytest.mark.parametrize("raw, folded", [
    ("上海市", "上海"), (" 上海 ", "上海"), ("上 海", "上海"), ("北京市", "北京"), ("香港特别行政区", "香港"),
    ("沙市", "沙市"),  # a two-character name keeps its 市
    ("shanghai", "Shanghai"), ("SHANGHAI", "Shanghai"), ("ｓｈａｎｇｈａｉ", "Shanghai"), ("new  york", "New York"),
    ("são paulo", "São Paulo"), ("Shanghai", "Shanghai"), ("shanghai市", "Shanghai"),
])
def test_fold_city(raw, folded):
    assert fold_city(raw) == folded


def test_clean_cities_keeps_nulls_and_applies_aliases_to_every_spelling():
    s = pd.Series(["上海市", "shanghai", None, "  ", "Beijing", "SHANGHAI"], index=[5, 6, 7, 8, 9, 10])
    out = clean_cities(s, {"Shanghai": "上海市"})  # key and value are folded too
    assert out.index.tolist() == [5, 6, 7, 8, 9, 10]
    assert out.tolist()[:2] == ["上海", "上海"] and out.isna().tolist()[2:4] == [True, True]
    assert out.tolist()[4:] == ["Beijing", "上海"]


def test_placeholders_are_no_city():
    s = pd.Series(["N/A", "null", "未知", "-", "Unknown", "上海"])
    assert clean_cities(s, placeholders=("n/a", "null", "-", "unknown")).isna().tolist() == [True] * 5 + [False]


def test_a_placeholder_city_does_not_win_survivorship(run):
    ids = [{"source": s, "record_id": r, "member_id": "M1"} for s, r in (("crm", "c1"), ("app", "a1"))]
    prof = _profiles([{"source": "crm", "record_id": "c1", "city": "N/A", "observed_at": "2026-01-01"},
                      {"source": "app", "record_id": "a1", "city": "杭州市", "observed_at": "2026-01-01"}])
    run(ids, profiles=prof)
    assert read_identity_table(run.identity_dir, "golden").to_pandas()["city"].tolist() == ["杭州"]


def test_golden_city_is_one_spelling_across_people(run):
    ids = [{"source": "crm", "record_id": f"c{i}", "member_id": f"M{i}"} for i in range(4)]
    prof = _profiles([{"source": "crm", "record_id": f"c{i}", "city": c, "observed_at": "2026-01-01"}
                      for i, c in enumerate(["上海市", "上海", "ＳＨＡＮＧＨＡＩ", "shanghai"])])
    run(ids, profiles=prof)
    g = read_identity_table(run.identity_dir, "golden").to_pandas()
    assert sorted(g["city"].tolist()) == ["Shanghai", "Shanghai", "上海", "上海"]


def test_rules_file_aliases_join_scripts(run, tmp_path):
    rules = tmp_path / "rules.yaml"
    rules.write_text("city:\n  aliases: {Shanghai: 上海}\n", encoding="utf-8")
    ids = [{"source": "crm", "record_id": f"c{i}", "member_id": f"M{i}"} for i in range(3)]
    prof = _profiles([{"source": "crm", "record_id": f"c{i}", "city": c, "observed_at": "2026-01-01"}
                      for i, c in enumerate(["上海市", "shanghai", "Hangzhou"])])
    run(ids, profiles=prof, rules_path=rules)
    g = read_identity_table(run.identity_dir, "golden").to_pandas()
    assert sorted(g["city"].tolist()) == ["Hangzhou", "上海", "上海"]


@pytest.mark.parametrize("body", ["city: [上海]\n", "city:\n  aliases: [上海]\n", "city:\n  aliases: {Shanghai: ''}\n"])
def test_bad_city_aliases_name_the_rule(tmp_path, body):
    rules = tmp_path / "rules.yaml"
    rules.write_text(body, encoding="utf-8")
    with pytest.raises(RulesError, match="city.aliases"):
        load_rules(rules)
