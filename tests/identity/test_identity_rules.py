"""Each OneID rule on hand-built records: variants link, placeholders don't, limits and priority decide."""

from __future__ import annotations

import numpy as np
import pytest

from features.identity.config import load_rules
from features.identity.graph import resolve_graph


def test_phone_and_email_variants_link_one_person(run):
    run([
        {"source": "crm", "record_id": "c1", "phone": "15478008866", "email": " Wang.Wei@163.COM "},
        {"source": "app", "record_id": "a1", "phone": "+86 154-7800-8866"},
        {"source": "pos", "record_id": "p1", "phone": "0086 154 7800 8866"},
        {"source": "web", "record_id": "w1", "phone": "86-15478008866"},
        {"source": "miniprogram", "record_id": "m1", "email": "wang.wei@163.com\t"},
        {"source": "pos", "record_id": "p2", "phone": "(154) 7800.8866"},
    ])
    assert len(set(run.record_map().values())) == 1


@pytest.mark.parametrize("placeholder", ["00000000000", "null", "N/A", "-1", "11111111111", " NULL "])
def test_blocked_phone_placeholders_never_link(run, placeholder):
    summary = run([{"source": "pos", "record_id": f"p{i}", "phone": placeholder} for i in range(5)])
    assert len(set(run.record_map().values())) == 5
    assert summary["dropped_identifiers"]["phone"] == {"blocked": 5}


def test_blocked_email_member_and_device_placeholders(run):
    rows = [{"source": "web", "record_id": f"w{i}", "email": e} for i, e in enumerate(["test@test.com", "TEST@test.com", "anonymous"])]
    rows += [{"source": "pos", "record_id": f"p{i}", "member_id": m} for i, m in enumerate(["0", "-1", "null", "000"])]
    rows += [{"source": "app", "record_id": f"a{i}", "device_id": "00000000-0000-0000-0000-000000000000"} for i in range(3)]
    run(rows)
    assert len(set(run.record_map().values())) == len(rows)


def test_bad_identifiers_are_counted_not_fatal(run, tmp_path):
    summary = run([
        {"source": "crm", "record_id": "c1", "phone": "1547800886", "email": "wang#163.com", "member_id": "M1"},
        {"source": "app", "record_id": "a1", "phone": "not a phone", "email": "a@", "member_id": "M 1"},
        {"source": "app", "record_id": "a2", "phone": "15478008866"},
    ])
    assert summary["dropped_identifiers"]["phone"] == {"invalid": 2}
    assert summary["dropped_identifiers"]["email"] == {"invalid": 2}
    assert summary["dropped_identifiers"]["member_id"] == {"invalid": 1}
    import pandas as pd

    dropped = pd.read_parquet(run.identity_dir / "dropped.parquet")
    assert len(dropped) == 5 and set(dropped["reason"]) == {"invalid"}
    assert summary["records"] == 3


def test_limit_stops_a_kiosk_device_merging_50_people(run):
    rows = [{"source": "pos", "record_id": f"p{i}", "phone": f"139{i:08d}", "device_id": "KIOSK-STORE-7"} for i in range(50)]
    rows += [{"source": "crm", "record_id": f"c{i}", "phone": f"139{i:08d}", "member_id": f"M{i}"} for i in range(50)]
    summary = run(rows)
    ids = run.record_map()
    assert len(set(ids.values())) == 50
    assert all(ids[f"pos:p{i}"] == ids[f"crm:c{i}"] for i in range(50))
    assert summary["links"]["device_id"]["refused_limit"] == 1


def test_naive_baseline_merges_the_kiosk(run):
    keys = {"phone": np.arange(1, 51, dtype=np.int64), "device_id": np.full(50, 7, np.int64)}
    limits = {"phone": 1, "device_id": 3}
    assert len(np.unique(resolve_graph(keys, ("phone", "device_id"), limits, use_limits=False).label)) == 1
    assert len(np.unique(resolve_graph(keys, ("phone", "device_id"), limits).label)) == 50


def test_household_device_within_limit_links_one_persons_records(run):
    # one person, two devices (re-install): device links records that hold no phone
    run([
        {"source": "app", "record_id": "a1", "phone": "13900000001", "device_id": "d-1"},
        {"source": "app", "record_id": "a2", "device_id": "d-1"},
        {"source": "app", "record_id": "a3", "phone": "13900000001", "device_id": "d-2"},
    ])
    assert len(set(run.record_map().values())) == 1


def test_recycled_phone_does_not_join_two_members(run):
    run([
        {"source": "crm", "record_id": "old", "member_id": "M1", "phone": "13900000001", "observed_at": "2023-01-01"},
        {"source": "crm", "record_id": "new", "member_id": "M2", "phone": "13900000001", "observed_at": "2026-01-01"},
    ])
    ids = run.record_map()
    assert ids["crm:old"] != ids["crm:new"]


def test_priority_decides_which_link_is_dropped():
    # r0-r1 share member M1 but carry different phones; r1-r2 share phone P2.
    # member_id first: member link made, phone P2 link would give 2 members? no: r2 has member M2 -> phone link refused.
    keys = {"member_id": np.array([1, 1, 2]), "phone": np.array([10, 20, 20])}
    limits = {"member_id": 1, "phone": 1}
    by_member = resolve_graph(keys, ("member_id", "phone"), limits)
    assert by_member.label.tolist() == [0, 0, 2]
    assert by_member.refused["reason"].tolist() == ["limit:member_id"]
    # phone first: the phone link r1-r2 is made; the member link r0-r1 would give 2 phones -> refused
    by_phone = resolve_graph(keys, ("phone", "member_id"), limits)
    assert by_phone.label.tolist() == [0, 1, 1]
    assert by_phone.refused["reason"].tolist() == ["limit:phone"]


def test_typo_phone_inside_a_member_does_not_block_later_links():
    # r0, r1 same member, r1 has a mistyped phone; r2 holds the real phone only: joins the member
    keys = {"member_id": np.array([1, 1, 0]), "phone": np.array([10, 11, 10])}
    res = resolve_graph(keys, ("member_id", "phone"), {"member_id": 1, "phone": 1})
    assert res.label.tolist() == [0, 0, 0]


def test_value_linking_two_members_is_refused():
    # A(M1,p5) - B(p5,e8) - C(p6,e8) - D(M2,p6): email e8 would join M1 and M2 -> refused
    keys = {"member_id": np.array([1, 0, 0, 2]), "phone": np.array([5, 5, 6, 6]), "email": np.array([0, 8, 8, 0])}
    res = resolve_graph(keys, ("member_id", "phone", "email"), {"member_id": 1, "phone": 1, "email": 1})
    assert res.label.tolist() == [0, 0, 2, 2]
    assert res.refused["reason"].tolist() == ["limit:member_id"]


def test_chain_of_individually_valid_links_is_undone():
    # A = {M1, e1}; B = two records joined by phone p9 holding e1 and e2; C = {M2, e2}.
    # e1 (A-B) and e2 (B-C) are each fine, together they would join M1 and M2.
    keys = {"member_id": np.array([1, 0, 0, 2]), "phone": np.array([0, 9, 9, 0]), "email": np.array([1, 1, 2, 2])}
    res = resolve_graph(keys, ("member_id", "phone", "email"), {"member_id": 1, "phone": 1, "email": 2})
    assert res.label.tolist() == [0, 1, 1, 3]
    assert sorted(res.refused["reason"]) == ["chain:email", "chain:email"]


def test_rules_file_overrides_and_errors(tmp_path):
    from features.identity.config import RulesError

    p = tmp_path / "r.yaml"
    p.write_text("limits:\n  device_id: 10\n")
    rules = load_rules(p)
    assert rules.limit("device_id") == 10 and rules.limit("cookie_id") == 5
    p.write_text("limits:\n  device_id: zero\n")
    with pytest.raises(RulesError, match="limits.device_id"):
        load_rules(p)
    p.write_text("priority: [phone, fax]\n")
    with pytest.raises(RulesError, match="priority"):
        load_rules(p)


def test_missing_columns_are_clear_errors(run, tmp_path):
    import pyarrow as pa

    from features.schema import SchemaError

    with pytest.raises(SchemaError, match=r"missing column\(s\) \['observed_at'\]"):
        run(pa.table({"source": ["crm"], "record_id": ["1"], "phone": ["13900000001"]}))
    with pytest.raises(SchemaError, match="no identifier column"):
        run(pa.table({"source": ["crm"], "record_id": ["1"], "observed_at": pa.array([0]).cast(pa.timestamp("us", tz="UTC"))}))


def test_numeric_phone_column_is_read_as_text(run):
    import pyarrow as pa

    ts = pa.array([0, 1]).cast(pa.timestamp("us", tz="UTC"))
    run(pa.table({"source": ["crm", "app"], "record_id": ["1", "2"], "phone": pa.array([13912345678] * 2), "observed_at": ts}))
    assert len(set(run.record_map().values())) == 1
