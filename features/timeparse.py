"""One reading of a column of event times, for every file a user hands portrait.

Used by the transactions reader (``portrait evaluate customer-value``) and the interactions
reader (``portrait evaluate recommender|lookalike``), so both accept the same things:

* datetime columns (Parquet), naive ones taken as UTC;
* numbers: ``YYYYMMDD`` (CDNOW's dates) or Unix epochs in s, ms, us or ns, told apart by size;
* text: ISO 8601 first, else **one** format inferred for the whole column, month-first then
  day-first. Never element-wise guessing: with it ``04/12/1997`` and ``27/11/1997`` in the same
  column were read as April 12 and November 27.

Errors name the file, the column, the first bad value and its data row.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

_EPOCH_UNITS = ((1e17, "ns"), (1e14, "us"), (1e11, "ms"), (0.0, "s"))  # size of "now" in each unit


def _yyyymmdd(num: pd.Series) -> bool:
    whole = num.notna().all() and (num == np.floor(num)).all()
    return bool(whole and len(num) and num.min() >= 1_900_01_01 and num.max() <= 2_100_12_31)


def to_times(col: pd.Series) -> pd.Series:
    """``col`` as UTC timestamps, NaT where a value cannot be read under the column's one format.

    Of the candidate readings (numbers; ISO 8601; one inferred format, month-first, then day-first)
    the one that reads the most values wins, so one bad row is that row's problem only.
    """
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        return col.dt.tz_convert("UTC")
    if pd.api.types.is_datetime64_any_dtype(col):
        return col.dt.tz_localize("UTC")
    num = pd.to_numeric(col, errors="coerce")
    readings = []
    if num.notna().any():  # numbers: YYYYMMDD or epochs, judged on the numeric values only
        n = num[num.notna()]
        if _yyyymmdd(n):
            digits = num.round().astype("Int64").astype("string")  # <NA> where not a number: NaT below
            readings.append(pd.to_datetime(digits, format="%Y%m%d", utc=True, errors="coerce"))
        else:
            unit = next(u for bound, u in _EPOCH_UNITS if float(np.abs(n).max()) >= bound)
            readings.append(pd.to_datetime(num, unit=unit, utc=True, errors="coerce"))
    if num.isna().any():  # text: ISO 8601, then one inferred format, month-first then day-first
        for kwargs in ({"format": "ISO8601"}, {}, {"dayfirst": True}):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pandas' "could not infer format" chatter
                readings.append(pd.to_datetime(col, utc=True, errors="coerce", **kwargs))
            if readings[-1].notna().all():
                break
    if not readings:
        return pd.Series(pd.NaT, index=col.index, dtype="datetime64[ns, UTC]")
    return max(readings, key=lambda r: int(r.notna().sum()))  # the first of the best: numbers, then ISO


def parse_times(col: pd.Series, origin: str, name: str) -> pd.Series:
    """``col`` as UTC timestamps; ``ValueError`` naming ``origin``, ``name``, the value and row if any fails."""
    ts = to_times(col)
    if ts.isna().any():  # only now: the reading above stays the one pass over a good column
        num = (pd.Series(np.nan, index=col.index) if pd.api.types.is_datetime64_any_dtype(col)
               else pd.to_numeric(col, errors="coerce"))
        unreadable = ts.isna() & num.isna()  # neither a date nor a number
        row = int(np.flatnonzero((unreadable if unreadable.any() else ts.isna()).to_numpy())[0])
        what = ("a missing time" if pd.isna(col.iloc[row]) else "an unreadable time" if unreadable.any()
                else "a number among dates (one format per column)" if num.isna().any() else "an out-of-range time")
        raise ValueError(f"{origin}: column {name!r} holds {what}: {col.iloc[row]!r} at data row {row + 1} "
                         "(expected ISO 8601 dates/times, YYYYMMDD, or Unix epochs in one unit); "
                         f"{int(ts.isna().sum())} bad value(s)")
    return ts
