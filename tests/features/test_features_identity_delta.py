"""Features read the current OneID tables: after an incremental identity run, base + deltas, not the base file."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from features.identity.tables import write_base, write_delta


def test_build_applies_identity_deltas(tmp_path, h):
    raw, ident = h.random_world(tmp_path / "data", n_people=30, seed=4).write()
    rm = pq.read_table(ident / "record_map.parquet")
    golden = pq.read_table(ident / "golden.parquet")
    ids = sorted(set(rm.column("one_id").to_pylist()))
    # an incremental run merges the records of ids[1] into ids[0]
    moved = rm.filter(pc.equal(rm.column("one_id"), ids[1]))
    moved = moved.set_column(moved.schema.get_field_index("one_id"), "one_id", pa.array([ids[0]] * moved.num_rows))

    base_only = tmp_path / "base_identity"  # the state before the run
    shutil.copytree(ident, base_only)
    flat = tmp_path / "flat_identity"  # the state after it, written as plain files
    shutil.copytree(ident, flat)
    pd.concat([rm.to_pandas()[lambda d: d["one_id"] != ids[1]], moved.to_pandas()], ignore_index=True).to_parquet(
        flat / "record_map.parquet", index=False)

    write_base(ident, {"record_map": rm, "golden": golden}, run_id="run0")
    write_delta(ident, "run1", {"record_map": moved, "golden": golden.slice(0, 0)}, touched=np.zeros(0, np.int64))
    assert pq.read_table(ident / "record_map.parquet").num_rows == rm.num_rows  # the base file did not change

    got = h.compute(raw, ident)[0].sort_index()
    pd.testing.assert_frame_equal(got, h.compute(raw, flat)[0].sort_index())
    assert not got.equals(h.compute(raw, base_only)[0].sort_index())  # the delta mattered
