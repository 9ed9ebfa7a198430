"""On-disk layout: incremental runs write delta parts + a manifest, readers apply them, compaction, atomicity."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from features.identity.hashing import record_key, record_keys
from features.identity.index import IdentityIndex
from features.identity.state import StateError
from features.identity.tables import read_identity_table, read_manifest

BASE = [
    {"source": "crm", "record_id": "c1", "member_id": "M1", "phone": "13900000001"},
    {"source": "web", "record_id": "w1", "email": "li.na@163.com"},
    {"source": "pos", "record_id": "p1", "phone": "13900000003"},
]


def _state(run) -> tuple[dict[str, str], pd.DataFrame, pd.DataFrame]:
    golden = read_identity_table(run.identity_dir, "golden").to_pandas()
    ids = read_identity_table(run.identity_dir, "identifiers").to_pandas()
    return run.record_map(), golden.sort_values("one_id").reset_index(drop=True), \
        ids.sort_values(["id_type", "id_hash", "one_id"]).reset_index(drop=True)


def test_incremental_writes_small_deltas_and_readers_see_the_merged_tables(run, key):
    run(BASE)
    base_rows = pq.read_metadata(run.identity_dir / "record_map.parquet").num_rows
    summary = run([{"source": "app", "record_id": "a2", "phone": "13900000001", "email": "LI.NA@163.com"}],
                  incremental=True)
    man = read_manifest(run.identity_dir)
    assert man["deltas"] == [summary["run_id"]]
    assert summary["records"] == 4 and summary["people"] == 2 and summary["delta_records"] == 2
    assert pq.read_metadata(run.identity_dir / "record_map.parquet").num_rows == base_rows  # base untouched
    delta = pq.read_table(run.identity_dir / "delta" / summary["run_id"] / "record_map.parquet").to_pandas()
    assert len(delta) == 2  # the new record + the merged-away person's record, nothing else
    rmap, golden, _ = _state(run)
    assert rmap["crm:c1"] == rmap["web:w1"] == rmap["app:a2"]
    assert len(golden) == 2 and set(golden["one_id"]) == {rmap["crm:c1"], rmap["pos:p1"]}
    merged = golden.set_index("one_id").loc[rmap["crm:c1"]]
    assert merged["n_records"] == 3 and merged["sources"] == "app,crm,web"
    assert IdentityIndex.load(run.identity_dir, key).resolve("web:w1") == rmap["crm:c1"]


def test_many_incremental_runs_equal_one_full_run_and_compact(run, make_runner, monkeypatch):
    monkeypatch.setattr("features.identity.incremental.MAX_DELTAS", 3)
    rows = BASE + [{"source": "app", "record_id": f"n{i}", "phone": f"1380000{i % 4:04d}", "email": f"u{i}@qq.com"}
                   for i in range(8)] + [{"source": "web", "record_id": "w2", "email": "u1@qq.com", "phone": "13900000003"}]
    run(rows[:3])
    for i in range(3, len(rows), 3):
        summary = run(rows[i:i + 3], incremental=True)
    assert summary["compacted"] and read_manifest(run.identity_dir)["deltas"] == []
    full = make_runner("full")
    full(rows)
    mine, theirs = _state(run), _state(full)
    groups = lambda m: sorted(tuple(sorted(k for k in m if m[k] == v)) for v in set(m.values()))  # noqa: E731
    assert groups(mine[0]) == groups(theirs[0])
    assert len(mine[1]) == len(theirs[1]) and sorted(mine[1]["n_records"]) == sorted(theirs[1]["n_records"])
    assert len(mine[2]) == len(theirs[2])
    assert set(read_identity_table(run.identity_dir, "golden").to_pandas()["one_id"]) == set(mine[0].values())
    plain = pd.read_parquet(run.identity_dir / "record_map.parquet")  # compacted: the base file alone is current
    assert dict(zip(plain["source"] + ":" + plain["record_id"], plain["one_id"])) == mine[0]


def test_a_crash_before_the_manifest_leaves_the_previous_state(run, monkeypatch):
    run(BASE)
    before = _state(run)

    def crash(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr("features.identity.incremental.write_json", crash)  # the summary write comes last
    monkeypatch.setattr("features.identity.tables.write_json", crash)  # the manifest replace is the commit
    with pytest.raises(OSError):
        run([{"source": "app", "record_id": "a9", "phone": "13900000001"}], incremental=True)
    after = _state(run)
    assert after[0] == before[0]
    pd.testing.assert_frame_equal(after[1], before[1])
    monkeypatch.undo()
    summary = run([{"source": "app", "record_id": "a9", "phone": "13900000001"}], incremental=True)  # retried fine
    assert summary["new_records"] == 1 and run.record_map()["app:a9"] == before[0]["crm:c1"]


def test_reader_waits_for_a_base_matching_the_manifest(run, monkeypatch):
    run(BASE)
    man = read_manifest(run.identity_dir)
    (run.identity_dir / "manifest.json").write_text(json.dumps({**man, "base": "a-run-being-written"}))
    monkeypatch.setattr("time.sleep", lambda _s: None)
    with pytest.raises(RuntimeError, match="kept changing"):
        read_identity_table(run.identity_dir, "record_map")


def test_full_run_after_incremental_writes_a_fresh_base(run):
    run(BASE)
    run([{"source": "app", "record_id": "a2", "phone": "13900000003"}], incremental=True)
    inc = run.record_map()
    run(BASE + [{"source": "app", "record_id": "a2", "phone": "13900000003"}])
    assert read_manifest(run.identity_dir)["deltas"] == [] and not any((run.identity_dir / "delta").glob("*"))
    assert run.record_map() == inc


def test_record_keys_agree_across_engines():
    src = pa.array(["crm", "app", "web", "é"] * 50)
    rid = pa.array([f"R{i}" + "x" * (i % 37) for i in range(200)])
    numpy_keys = record_keys(src, rid, engine="numpy")
    assert (numpy_keys == np.array([record_key(s, r) for s, r in zip(src.to_pylist(), rid.to_pylist())])).all()
    assert (record_keys(src, rid, engine="kernel") == numpy_keys).all()
    assert len(set(numpy_keys.tolist())) == 200


def _snapshot(d) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_unknown_table_is_a_clear_error(run):
    run(BASE)
    with pytest.raises(ValueError, match="unknown table 'golden_records'.*record_map"):
        read_identity_table(run.identity_dir, "golden_records")


@pytest.mark.parametrize("text, field", [("{not json", "unreadable"), ('{"deltas": []}', "'base'"),
                                         ('{"base": "x", "deltas": "r1"}', "'deltas'")])
def test_corrupt_manifest_names_the_file_and_field(run, text, field):
    run(BASE)
    (run.identity_dir / "manifest.json").write_text(text)
    before = _snapshot(run.identity_dir)
    with pytest.raises(StateError, match=f"manifest.json: .*{field}"):
        read_identity_table(run.identity_dir, "record_map")
    with pytest.raises(StateError, match="manifest.json"):
        run([{"source": "app", "record_id": "a9", "phone": "13900000001"}], incremental=True)
    assert _snapshot(run.identity_dir) == before  # the failed run wrote nothing


def test_a_missing_delta_file_or_manifest_is_named(run):
    run(BASE)
    summary = run([{"source": "app", "record_id": "a2", "phone": "13900000003"}], incremental=True)
    part = run.identity_dir / "delta" / summary["run_id"]
    (part / "golden.parquet").rename(part / "golden.parquet.bak")
    with pytest.raises(StateError, match=rf"{summary['run_id']}/golden.parquet: listed by .*manifest.json"):
        read_identity_table(run.identity_dir, "golden")
    (part / "golden.parquet.bak").rename(part / "golden.parquet")
    (run.identity_dir / "manifest.json").unlink()
    with pytest.raises(StateError, match="manifest.json: missing while delta parts exist"):
        read_identity_table(run.identity_dir, "record_map")


def test_incremental_on_an_old_layout_directory_is_refused_and_changes_nothing(run):
    run(BASE)
    d = run.identity_dir
    meta = json.loads((d / "state" / "meta.json").read_text())
    (d / "state" / "meta.json").write_text(json.dumps({**meta, "format": 1}))  # as written before state segments
    (d / "manifest.json").unlink()  # and before manifests
    before = _snapshot(d)
    with pytest.raises(StateError, match=r"state.*older version.*portrait identity resolve"):
        run([{"source": "app", "record_id": "a9", "phone": "13900000001"}], incremental=True)
    assert _snapshot(d) == before


def test_feature_build_reports_a_corrupt_manifest_as_an_input_error(run):
    """``portrait features build`` catches SchemaError: a broken identity folder must arrive as one, named."""
    import duckdb

    from features.build_inputs import _identity_source
    from features.schema import SchemaError

    run(BASE)
    (run.identity_dir / "manifest.json").write_text("{not json")
    with pytest.raises(SchemaError, match=r"manifest.json: .*unreadable"):
        _identity_source(duckdb.connect(), run.identity_dir, "record_map")
