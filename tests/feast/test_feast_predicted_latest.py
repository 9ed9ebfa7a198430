"""The predicted-tags side table: a merge reads one row per customer, never a stale one.

Every push appends a row per customer to the offline history, so reading the whole history for
each merge grows with the number of batches. ``append_offline`` also writes
``predicted_tags.latest.parquet`` (each customer's newest row), stamped with the history it
matches; a history changed by anything else is read whole.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from features import predicted_tags as pt

T0 = pd.Timestamp("2026-11-01", tz="UTC")


def push(path, frame: pd.DataFrame, day: int) -> None:  # noqa: ANN001
    now = T0 + pd.Timedelta(days=day)
    given = pt.prepare(frame.assign(**({} if "event_timestamp" in frame else {"scored_at": now})), now=now)
    pt.append_offline(path, pt.merge_rows(given, pt.latest_rows(path, given["one_id"]), pd.Timedelta(days=30)))


def whole_history(path) -> pd.DataFrame:  # noqa: ANN001
    frame = pq.read_table(path).to_pandas().sort_values("event_timestamp", kind="stable")
    return pt._typed(frame.drop_duplicates("one_id", keep="last")).set_index("one_id").sort_index()


def test_the_side_table_gives_what_the_whole_history_gives(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "predicted_tags.parquet"
    ids = [f"p{i}" for i in range(6)]
    push(path, pd.DataFrame({"one_id": ids, "churn_risk": [0.1 * i for i in range(6)], "churn_tier": "low"}), 0)
    push(path, pd.DataFrame({"one_id": ids[:3], "ltv": [10.0, 20.0, 30.0], "ltv_tier": "top"}), 1)
    push(path, pd.DataFrame({"one_id": ids[2:4], "lookalike_audiences": ["a", None],
                             "event_timestamp": T0 + pd.Timedelta(days=2)}), 2)
    push(path, pd.DataFrame({"one_id": ["p5", "p9"], "churn_risk": [0.9, 0.2]}), 3)
    assert pq.read_metadata(path).num_rows == 6 + 3 + 2 + 2  # the history keeps every row
    side = pq.read_table(pt.latest_path(path))
    assert side.num_rows == 7 and (side.schema.metadata or {}).get(b"portrait.history")
    got = pt.latest_rows(path).sort_index()
    pd.testing.assert_frame_equal(got, whole_history(path))
    assert got.loc["p2", "ltv"] == 30.0 and got.loc["p2", "lookalike_audiences"] == "a"  # merged, not replaced
    assert got.loc["p5", "churn_risk"] == 0.9 and pd.isna(got.loc["p9", "ltv"])
    pd.testing.assert_frame_equal(pt.latest_rows(path, ["p9", "p1"]).sort_index(), got.loc[["p1", "p9"]])


def test_a_history_written_by_something_else_is_read_whole(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "predicted_tags.parquet"
    push(path, pd.DataFrame({"one_id": ["a", "b"], "churn_risk": [0.1, 0.2]}), 0)
    stored = pq.read_table(path)  # e.g. Feast's own offline push: appends a row, leaves the side table alone
    extra = pt.merge_rows(pt.prepare(pd.DataFrame({"one_id": ["a"], "churn_risk": [0.7],
                                                   "scored_at": T0 + pd.Timedelta(days=1)})),
                          pt.latest_rows(path, ["a"]))
    pq.write_table(pa.concat_tables([stored, pa.Table.from_pandas(extra, preserve_index=False)
                                     .select(stored.column_names).cast(stored.schema)]), path)
    assert pt.latest_rows(path).loc["a", "churn_risk"] == 0.7  # not the side table's 0.1
    push(path, pd.DataFrame({"one_id": ["b"], "ltv": [5.0]}), 2)  # the next write rebuilds it from the history
    assert pq.read_table(pt.latest_path(path)).num_rows == 2
    pd.testing.assert_frame_equal(pt.latest_rows(path).sort_index(), whole_history(path))
    assert pt.latest_rows(path).loc["a", "churn_risk"] == 0.7


def test_an_unreadable_side_table_is_ignored(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "predicted_tags.parquet"
    push(path, pd.DataFrame({"one_id": ["a", "b"], "churn_risk": [0.1, 0.2]}), 0)
    push(path, pd.DataFrame({"one_id": ["a"], "churn_risk": [0.3]}), 1)
    pt.latest_path(path).write_bytes(b"not parquet")
    assert pt.latest_rows(path)["churn_risk"].to_dict() == {"a": 0.3, "b": 0.2}
    push(path, pd.DataFrame({"one_id": ["b"], "churn_risk": [0.4]}), 2)
    assert pt.latest_rows(path)["churn_risk"].to_dict() == {"a": 0.3, "b": 0.4}
