"""Atomic writes: a crash mid-write leaves the previous table intact, and no temp files behind."""

from __future__ import annotations

import pandas as pd
import pytest

from features.io import atomic_write, load_validated, read_frame, write_parquet
from features.schema import ORDERS, SchemaError


def test_crash_during_write_keeps_old_table(tmp_path):
    path = tmp_path / "t.parquet"
    write_parquet(pd.DataFrame({"a": [1, 2, 3]}), path)

    def crash(tmp):
        pd.DataFrame({"a": [9]}).to_parquet(tmp)  # half the job done...
        raise KeyboardInterrupt  # ...then the process is interrupted

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, crash)
    assert pd.read_parquet(path)["a"].tolist() == [1, 2, 3]
    assert [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_missing_column_writes_nothing(tmp_path):
    df = pd.DataFrame({"order_id": ["o"], "source": ["pos"]})
    with pytest.raises(SchemaError):
        load_validated(df, ORDERS, tmp_path / "raw", tmp_path / "rejects", origin="x.csv")
    assert not (tmp_path / "raw").exists()


def test_rejects_file_written_and_removed(tmp_path):
    bad = pd.DataFrame({"order_id": ["o1", "o2"], "source": ["pos"] * 2, "record_id": ["r"] * 2,
                        "ts": ["2026-01-01"] * 2, "amount": ["1", "five"]})
    res = load_validated(bad, ORDERS, tmp_path / "raw", tmp_path / "rej", "orders.csv")
    rej = pd.read_csv(tmp_path / "rej" / "orders.csv")
    assert len(res.accepted) == 1 and rej["_reason"].tolist() == ["amount: not a valid amount: five"]
    load_validated(bad.iloc[:1], ORDERS, tmp_path / "raw", tmp_path / "rej", "orders.csv")
    assert not (tmp_path / "rej" / "orders.csv").exists()


def test_read_frame_errors_name_the_file(tmp_path):
    with pytest.raises(SchemaError, match="nope.csv: no such file"):
        read_frame(tmp_path / "nope.csv")
    broken = tmp_path / "broken.parquet"
    broken.write_bytes(b"not parquet")
    with pytest.raises(SchemaError, match="broken.parquet: cannot be read"):
        read_frame(broken)


def test_a_shifted_row_is_named_also_after_an_excel_sep_line(tmp_path):
    path = tmp_path / "shifted.csv"
    path.write_text("sep=,\na,b\n1,2,3\n4,5\n")
    with pytest.raises(SchemaError, match="data row 1 has more fields than the header"):
        read_frame(path)
