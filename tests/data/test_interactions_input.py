"""``portrait evaluate recommender`` on files shaped the way users' exports come: each reads right or fails clearly.

Every case here was a traceback, a silent misreading or a needless rejection before (found by
running the command over ~65 variants of MovieLens: headers, delimiters, time formats, gaps).
"""

from __future__ import annotations

import gzip

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from typer.testing import CliRunner

from training.evaluation.splits import global_temporal_split, split_matrices
from training.recommender_eval import read_interactions

ROWS = [("1", "10", 5, 881250949), ("1", "11", 3, 881250950), ("2", "10", 4, 881250951)]


def _csv(path, header: str, rows=ROWS, sep: str = ",", time=lambda t: t) -> None:  # noqa: ANN001
    lines = [header] + [sep.join(str(v) for v in (u, i, w, time(t))) for u, i, w, t in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _expect_rows(df: pd.DataFrame) -> None:
    assert df["user"].tolist() == ["1", "1", "2"] and df["item"].tolist() == ["10", "11", "10"]
    assert df["weight"].tolist() == [5.0, 3.0, 4.0]
    assert df["timestamp"].iloc[0] == pd.Timestamp(881250949, unit="s", tz="UTC")


@pytest.mark.parametrize("header", ["User ID,Item ID,Rating,Timestamp", "userId,movieId,rating,timestamp",
                                    "user-id,product_id,score,ts"])
def test_column_names_match_ignoring_case_spaces_and_separators(tmp_path, header: str) -> None:
    _csv(tmp_path / "x.csv", header)
    _expect_rows(read_interactions(tmp_path / "x.csv"))


def test_byte_order_mark_semicolons_and_gzip(tmp_path) -> None:
    _csv(tmp_path / "bom.csv", "user_id,item_id,rating,timestamp")
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbf" + (tmp_path / "bom.csv").read_bytes())
    _expect_rows(read_interactions(tmp_path / "bom.csv"))
    _csv(tmp_path / "semi.csv", "user_id;item_id;rating;timestamp", sep=";")
    _expect_rows(read_interactions(tmp_path / "semi.csv"))
    _csv(tmp_path / "plain.tsv", "user_id\titem_id\trating\ttimestamp", sep="\t")
    with gzip.open(tmp_path / "z.tsv.gz", "wb") as fh:
        fh.write((tmp_path / "plain.tsv").read_bytes())
    _expect_rows(read_interactions(tmp_path / "z.tsv.gz"))


@pytest.mark.parametrize("scale", [1, 1_000, 1_000_000, 1_000_000_000])
def test_numeric_epochs_in_any_unit(tmp_path, scale: int) -> None:
    _csv(tmp_path / "x.csv", "user_id,item_id,rating,timestamp", time=lambda t: t * scale)
    _expect_rows(read_interactions(tmp_path / "x.csv"))


def test_day_first_dates_are_read_one_way_for_the_whole_column(tmp_path) -> None:
    rows = [("1", "10", 5, "04/12/1997 15:55"), ("1", "11", 3, "27/11/1997 08:00"), ("2", "10", 4, "05/12/1997 09:00")]
    _csv(tmp_path / "eu.csv", "user_id,item_id,rating,timestamp", rows=rows)
    ts = read_interactions(tmp_path / "eu.csv")["timestamp"]
    # element-wise guessing read 04/12 as April 12 and 27/11 as November 27 in the same column
    assert [t.month for t in ts] == [12, 11, 12] and [t.day for t in ts] == [4, 27, 5]


def test_a_date_off_the_columns_one_format_is_named_so(tmp_path) -> None:
    rows = [("1", "10", 5, "04/12/1997"), ("1", "11", 3, "05/13/1997"), ("2", "10", 4, "27/11/1997")]
    _csv(tmp_path / "us.csv", "user_id,item_id,rating,timestamp", rows=rows)
    with pytest.raises(ValueError, match=r"'timestamp' holds a date, but not in the column's format MM/DD/YYYY "
                                         r"\(one format per column, read from 2 of its values\): '27/11/1997' at data row 3"):
        read_interactions(tmp_path / "us.csv")


def test_unreadable_inputs_name_the_file_column_and_row(tmp_path) -> None:
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match="empty.csv: the file is empty"):
        read_interactions(tmp_path / "empty.csv")
    (tmp_path / "gap.csv").write_text("user_id,item_id,rating\n1,10,5\n2,,4\n")
    with pytest.raises(ValueError, match=r"column 'item_id' is empty in 1 row\(s\), first at data row 2"):
        read_interactions(tmp_path / "gap.csv")  # was read as an item called "nan"
    rows = ROWS[:2] + [("2", "10", 4, "not a time")]
    _csv(tmp_path / "t.csv", "user_id,item_id,rating,timestamp", rows=rows)
    with pytest.raises(ValueError, match="unreadable time: 'not a time' at data row 3"):
        read_interactions(tmp_path / "t.csv")
    rows = [("1", "10", 5, "1997-12-04"), ("1", "11", 3, "1997-12-05"), ("2", "10", 4, "881250951")]
    _csv(tmp_path / "mix.csv", "user_id,item_id,rating,timestamp", rows=rows)
    with pytest.raises(ValueError, match=r"a number among dates \(one format per column\): '881250951' at data row 3"):
        read_interactions(tmp_path / "mix.csv")
    _csv(tmp_path / "names.csv", "member,product,rating,timestamp")
    with pytest.raises(ValueError, match=r"no user column; found \['member', 'product'"):
        read_interactions(tmp_path / "names.csv")  # was read with the header as an interaction


def test_weight_zero_is_no_interaction_and_its_time_goes_with_it() -> None:
    df = pd.DataFrame({"user": ["a"] * 6 + ["b"] * 6, "item": [str(i) for i in range(6)] * 2,
                       "weight": [0, 1, 2, 0, 3, 1, 1, 0, 2, 2, 1, 1.0],
                       "timestamp": pd.to_datetime(np.arange(12) * 86_400, unit="s", utc=True)})
    split = split_matrices(df, "temporal", 0)
    assert split.train.nnz + split.test.nnz == 9 and split.train.nnz == split.train_times.nnz
    from training.recommender_eval import default_model

    # a caller's own matrices may hold weight-0 entries with times: the model drops both together
    X = sp.csr_matrix(np.array([[0, 1, 2, 1], [1, 0, 1, 1], [1, 1, 0, 2]], dtype=np.float32))
    X[0, 0] = 0.0  # an explicit zero: a stored entry that as_csr removes
    T = sp.csr_matrix(np.array([[1, 2, 3, 4], [1, 0, 2, 3], [1, 2, 0, 3]], dtype=np.float64))
    model = default_model("temporal", low_pass_weights=(0.0,)).fit(X, times=T)
    ids, _ = model.recommend(X[:1], k=2, times=T[:1])
    assert ids[0, 0] == 0  # the weight-0 item is not "seen", so it can be recommended


def test_global_temporal_without_a_usable_cut_off_is_a_clear_cli_error(tmp_path) -> None:
    with pytest.raises(ValueError, match="leaves no training rows"):
        global_temporal_split(pd.DataFrame({"timestamp": pd.to_datetime([5, 5, 5], unit="s")}))
    rows = [(u, i, 1, 880000000) for u in "123" for i in ("10", "11", "12")]
    _csv(tmp_path / "same.csv", "user_id,item_id,rating,timestamp", rows=rows)
    from portrait.cli import app

    res = CliRunner().invoke(app, ["evaluate", "recommender", "-i", str(tmp_path / "same.csv"),
                                   "--protocol", "global-temporal", "--peers", "popularity", "--json"])
    assert res.exit_code == 2 and "leaves no training rows" in res.output and "Traceback" not in res.output


def test_use_weights_reaches_the_peers_that_binarize_and_nobody_to_score_is_an_error() -> None:
    from training.recommender_eval import evaluate_frame

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"user": rng.integers(0, 60, 1500).astype(str), "item": rng.integers(0, 40, 1500).astype(str),
                       "weight": rng.choice([1.0, 5.0], 1500)})
    plain = evaluate_frame(df, peers=("ease",), seed=1)["baselines"]["ease"]
    weighted = evaluate_frame(df, peers=("ease",), seed=1, use_weights=True)["baselines"]["ease"]
    assert plain["ndcg"] != weighted["ndcg"]  # --use-weights was silently ignored by EASE before
    late = pd.DataFrame({"user": ["a", "a", "b"], "item": ["1", "2", "1"],
                         "timestamp": pd.to_datetime([1, 2, 3], unit="D", utc=True)})
    with pytest.raises(ValueError, match="nobody to evaluate"):  # b's only event is after the cut-off
        evaluate_frame(late, "global-temporal", peers=())


def test_one_bad_value_among_epochs_is_counted_once() -> None:
    from features.timeparse import parse_times, to_times

    col = pd.Series(["881250949", "881250950", "not a time", "19970101"])
    with pytest.raises(ValueError, match=r"'not a time' at data row 3 .*; 1 bad value\(s\)"):
        parse_times(col, "x.csv", "ts")  # said "3 bad value(s)": the text readers read no epoch at all
    assert to_times(pd.Series([19970101, 19971231])).dt.strftime("%Y-%m-%d").tolist() == ["1997-01-01", "1997-12-31"]


@pytest.mark.parametrize("third", ["epoch", "epoch_ms", "iso", "rating"])
def test_a_headerless_third_column_is_a_time_when_it_holds_times(tmp_path, third: str) -> None:
    values = {"epoch": [881250949, 881250950, 881250951], "epoch_ms": [881250949000, 881250950000, 881250951000],
              "iso": ["1997-12-04 15:55:49", "1997-12-04 15:55:50", "1997-12-04 15:55:51"], "rating": [5, 3, 4]}[third]
    path = tmp_path / "three.csv"
    path.write_text("".join(f"{u},{i},{v}\n" for (u, i, _, _), v in zip(ROWS, values)))
    df = read_interactions(path)
    if third == "rating":  # small numbers stay weights
        assert df["weight"].tolist() == [5.0, 3.0, 4.0] and "timestamp" not in df
    else:
        assert (df["weight"] == 1.0).all()
        assert df["timestamp"].iloc[0] == pd.Timestamp(881250949, unit="s", tz="UTC")
