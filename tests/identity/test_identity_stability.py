"""one_ids survive runs: incremental batches, merges (older id survives, alias kept), splits, change logs."""

from __future__ import annotations

import pandas as pd
import pytest

from features.identity.index import IdentityIndex
from features.identity.store import StateError
from features.identity.tables import read_identity_table

BASE = [
    {"source": "crm", "record_id": "c1", "member_id": "M1", "phone": "13900000001"},
    {"source": "app", "record_id": "a1", "phone": "139-0000-0001"},
    {"source": "web", "record_id": "w1", "email": "li.na@163.com"},
    {"source": "pos", "record_id": "p1", "phone": "13900000003"},
]


def changes(run) -> pd.DataFrame:
    return pd.concat([pd.read_parquet(p) for p in sorted((run.identity_dir / "changelog").glob("*.parquet"))])


def test_full_rerun_keeps_every_id(run):
    run(BASE)
    first = run.record_map()
    summary = run(BASE)
    assert run.record_map() == first
    assert summary["changes"] == {}


def test_incremental_keeps_ids_and_joins_records_to_their_person(run):
    run(BASE)
    before = run.record_map()
    summary = run([{"source": "miniprogram", "record_id": "m1", "phone": "+86 13900000001"},
                   {"source": "web", "record_id": "w9", "email": "new.person@qq.com"}], incremental=True)
    after = run.record_map()
    assert {k: after[k] for k in before} == before
    assert after["miniprogram:m1"] == before["crm:c1"]
    assert after["web:w9"] not in before.values()
    assert summary["new_records"] == 2 and summary["changes"] == {"new": 1}


def test_incremental_ignores_records_already_seen(run):
    run(BASE)
    summary = run(BASE, incremental=True)
    assert summary["batch_records"] == 0 and summary["changes"] == {}


def test_merge_keeps_the_older_id_and_aliases_the_other(run, key):
    run(BASE)
    before = run.record_map()
    older, younger = sorted([before["crm:c1"], before["web:w1"]])
    summary = run([{"source": "app", "record_id": "a2", "phone": "13900000001", "email": "LI.NA@163.com "}], incremental=True)
    after = run.record_map()
    assert after["crm:c1"] == after["web:w1"] == after["app:a2"] == older
    assert summary["changes"] == {"merged": 1}
    aliases = read_identity_table(run.identity_dir, "aliases").to_pandas()
    assert aliases[["alias_id", "one_id"]].values.tolist() == [[younger, older]]
    log = changes(run)
    merged = log[log["change"] == "merged"]
    assert merged[["one_id", "from_one_id"]].values.tolist() == [[older, younger]]
    index = IdentityIndex.load(run.identity_dir, key)
    assert index.resolve(younger) == older
    assert younger not in set(read_identity_table(run.identity_dir, "golden").to_pandas()["one_id"])


def test_split_gives_new_id_and_is_logged(run):
    rows = [{"source": "app", "record_id": "x1", "phone": "13900000007"},
            {"source": "app", "record_id": "x2", "phone": "13900000007", "email": "z@qq.com"},
            {"source": "web", "record_id": "x3", "email": "z@qq.com"},
            {"source": "web", "record_id": "x4", "email": "z@qq.com"}]
    run(rows)
    one = run.record_map()["app:x1"]
    summary = run([rows[0], rows[2], rows[3]])  # the bridging record is gone: a full run splits
    after = run.record_map()
    assert after["web:x3"] == after["web:x4"] == one  # the larger part keeps the id
    assert after["app:x1"] != one
    assert summary["changes"] == {"split": 1}
    log = changes(run)
    assert log[log["change"] == "split"][["one_id", "from_one_id"]].values.tolist() == [[after["app:x1"], one]]


def test_incremental_equals_full_on_the_same_records(run, make_runner):
    rows = BASE + [{"source": "app", "record_id": f"k{i}", "phone": f"1380000{i:04d}", "device_id": "kiosk"} for i in range(30)]
    rows += [{"source": "app", "record_id": "a2", "phone": "13900000001", "email": "li.na@163.com"}]
    run(rows[:20])
    run(rows[20:], incremental=True)
    full = make_runner("full")
    full(rows)
    inc_groups = pd.Series(run.record_map()).groupby(lambda k: run.record_map()[k]).apply(lambda s: tuple(sorted(s.index)))
    full_groups = pd.Series(full.record_map()).groupby(lambda k: full.record_map()[k]).apply(lambda s: tuple(sorted(s.index)))
    assert sorted(inc_groups) == sorted(full_groups)
    for r in (run, full):  # every kiosk holder is listed with the refused device, once
        ref = read_identity_table(r.identity_dir, "refused").to_pandas()
        kiosk = ref[ref["id_type"] == "device_id"]
        assert kiosk["id_hash"].nunique() == 1 and not kiosk.duplicated(["id_hash", "one_id"]).any()
        assert set(kiosk["one_id"]) == {r.record_map()[f"app:k{i}"] for i in range(30)}


def test_incremental_without_previous_run_and_other_key_are_clear_errors(run):
    with pytest.raises(StateError, match="no previous OneID run"):
        run(BASE, incremental=True)
    run(BASE)
    with pytest.raises(StateError, match="another HMAC key"):
        run(BASE, key="another-key-0123456789")


def test_updated_record_moves_with_its_identifiers(run, records):
    run(BASE)
    before = run.record_map()
    moved = records([{"source": "app", "record_id": "a1", "phone": "13900000003", "observed_at": "2026-03-01"}])
    summary = run(moved, incremental=True)
    after = run.record_map()
    assert summary["updated_records"] == 1
    assert after["app:a1"] == before["pos:p1"]
    assert after["crm:c1"] == before["crm:c1"]
