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

import re
import warnings

import numpy as np
import pandas as pd

_EPOCH_UNITS = ((1e17, "ns"), (1e14, "us"), (1e11, "ms"), (0.0, "s"))  # size of "now" in each unit
_UNIT_NAMES = {"s": "seconds", "ms": "milliseconds", "us": "microseconds", "ns": "nanoseconds"}
# a clock time followed by a zone: such text is not naive, --tz does not apply to it
_AWARE = re.compile(r"\d:\d\d(?::\d\d(?:[.,]\d+)?)?\s*(?:Z|UTC|GMT|[+-]\d\d(?::?\d\d)?)$", re.IGNORECASE)


def _yyyymmdd(num: pd.Series) -> bool:
    whole = num.notna().all() and (num == np.floor(num)).all()
    return bool(whole and len(num) and num.min() >= 1_900_01_01 and num.max() <= 2_100_12_31)


# Chinese exports write dates as 2026年3月4日 (日 or 号): rewritten to ISO 2026-03-04, which is never ambiguous
_CJK_DATE = re.compile(r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?\s*")


def _cjk_dates(col: pd.Series) -> pd.Series:
    if not (col.dtype == object or isinstance(col.dtype, pd.StringDtype)):
        return col
    text = col.astype("string")
    has = text.str.contains("年", regex=False, na=False)
    if not has.any():
        return col
    iso = text[has].str.replace(_CJK_DATE, lambda m: f"{m[1]}-{int(m[2]):02d}-{int(m[3]):02d} ", regex=True)
    out = col.astype(object).copy()
    out[has] = iso.str.strip().astype(object)
    return out


def _epoch_unit(size: pd.Series) -> pd.Series:
    """The unit each absolute epoch value's size says it is in."""
    unit = pd.Series("s", index=size.index, dtype=object)
    for bound, name in reversed(_EPOCH_UNITS[:-1]):
        unit[size >= bound] = name
    return unit


def _localize(ts: pd.Series, naive: pd.Series, tz: str) -> pd.Series:
    """``ts`` (read as UTC) with its ``naive`` rows taken as wall-clock times of ``tz`` instead."""
    if tz in ("UTC", "utc") or not naive.any():
        return ts
    ts = ts.copy()
    local = ts[naive].dt.tz_localize(None).dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
    ts[naive] = local.dt.tz_convert("UTC")
    return ts


def read_times(col: pd.Series, dayfirst: bool = False, tz: str = "UTC") -> tuple[pd.Series, pd.Series]:
    """``col`` as UTC timestamps, and per row why it is NaT when the reason is not just "unreadable".

    Of the candidate readings (numbers; ISO 8601; one inferred format, month-first then day-first,
    or day-first first with ``dayfirst``) the one that reads the most values wins, so one bad row is
    that row's problem only. Epochs take the unit most values fit; a value of another size (seconds
    among milliseconds) is NaT with a note naming the column's unit, never a date in 1970.
    Naive times (text without a zone, YYYYMMDD, naive datetimes) are wall-clock times of ``tz``.
    """
    note = pd.Series(pd.NA, index=col.index, dtype="string")
    if isinstance(col.dtype, pd.DatetimeTZDtype):
        return col.dt.tz_convert("UTC"), note
    if pd.api.types.is_datetime64_any_dtype(col):
        return _localize(col.dt.tz_localize("UTC"), pd.Series(True, index=col.index), tz), note
    num = pd.to_numeric(col, errors="coerce")
    readings = []
    if num.notna().any():  # numbers: YYYYMMDD or epochs, judged on the numeric values only
        n = num[num.notna()]
        if _yyyymmdd(n):
            digits = num.round().astype("Int64").astype("string")  # <NA> where not a number: NaT below
            day = pd.to_datetime(digits, format="%Y%m%d", utc=True, errors="coerce")
            readings.append((_localize(day, num.notna(), tz), note))
        else:
            units = _epoch_unit(n.abs())
            counts = units.value_counts()  # the unit most values are in (ties: the finer one)
            unit = max(counts.index, key=lambda u: (counts[u], list(_UNIT_NAMES).index(u)))
            other = units[units != unit]
            mismatch = note.copy()
            mismatch[other.index] = (f"not an epoch in {_UNIT_NAMES[unit]} (the column's unit; this looks like "
                                     + other.map(_UNIT_NAMES) + ")")
            readings.append((pd.to_datetime(num.drop(other.index).reindex(col.index), unit=unit, utc=True,
                                            errors="coerce"), mismatch))
    if num.isna().any():  # text: ISO 8601, then one inferred format (month-first unless dayfirst)
        col = _cjk_dates(col)
        utc = tz in ("UTC", "utc")  # nothing to localize: skip the per-value zone regex (a hot path on big files)
        naive = (pd.Series(False, index=col.index) if utc
                 else ~col.astype("string").str.strip().str.contains(_AWARE, na=False))
        orders = ({}, {"dayfirst": True}) if not dayfirst else ({"dayfirst": True}, {})
        for kwargs in ({"format": "ISO8601"}, *orders):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # pandas' "could not infer format" chatter
                ts = pd.to_datetime(col, utc=True, errors="coerce", **kwargs)
            readings.append((_localize(ts, naive & ts.notna(), tz), note, kwargs))
            if ts.notna().all():
                break
    if not readings:
        return pd.Series(pd.NaT, index=col.index, dtype="datetime64[ns, UTC]"), note
    best = max(readings, key=lambda r: int(r[0].notna().sum()))  # the first of the best: numbers, then ISO
    return best[0], (best[1] if len(best) == 2 else _off_format(col, best[0], best[1], best[2]))


_FORMAT_NAMES = (("%Y", "YYYY"), ("%y", "YY"), ("%m", "MM"), ("%d", "DD"), ("%H", "hh"), ("%I", "hh"),
                 ("%M", "mm"), ("%S", "ss"), ("%f", "ffffff"), ("%p", "AM/PM"), ("%b", "Mon"), ("%B", "Month"))
_EXPLAINED = 100_000  # rows of a column explained one by one at most (each is a dateutil parse)


def _off_format(col: pd.Series, ts: pd.Series, note: pd.Series, kwargs: dict) -> pd.Series:
    """``note`` plus, for a row an inferred one-format reading misses but that is a date on its own,
    the column's format: "27/11/1997" in a month-first column is not "unreadable"."""
    if not ts.isna().any() or not ts.notna().any():
        return note
    from pandas.tseries.api import guess_datetime_format

    first = str(col[ts.notna()].iloc[0]).strip()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fmt = ("ISO 8601, YYYY-MM-DD" if kwargs.get("format") == "ISO8601"
               else guess_datetime_format(first, dayfirst=bool(kwargs.get("dayfirst"))))
    if fmt is None:
        return note
    missed = col[ts.isna() & col.notna()].iloc[:_EXPLAINED]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        alone = pd.to_datetime(missed.astype("string"), format="mixed", utc=True, errors="coerce")
    dates = alone.index[alone.notna()]
    if not len(dates):
        return note
    for code, name in _FORMAT_NAMES:
        fmt = fmt.replace(code, name)
    note = note.copy()
    note[dates] = (f"a date, but not in the column's format {fmt} (one format per column, read from "
                   f"{int(ts.notna().sum())} of its values)")
    return note


def to_times(col: pd.Series, dayfirst: bool = False, tz: str = "UTC") -> pd.Series:
    """``col`` as UTC timestamps, NaT where a value cannot be read under the column's one format."""
    return read_times(col, dayfirst, tz)[0]


def parse_times(col: pd.Series, origin: str, name: str) -> pd.Series:
    """``col`` as UTC timestamps; ``ValueError`` naming ``origin``, ``name``, the value and row if any fails."""
    ts, note = read_times(col)
    if ts.isna().any():  # only now: the reading above stays the one pass over a good column
        num = (pd.Series(np.nan, index=col.index) if pd.api.types.is_datetime64_any_dtype(col)
               else pd.to_numeric(col, errors="coerce"))
        unreadable = ts.isna() & num.isna()  # neither a date nor a number
        row = int(np.flatnonzero((unreadable if unreadable.any() else ts.isna()).to_numpy())[0])
        what = ("a missing time" if pd.isna(col.iloc[row])
                else note.iloc[row] if unreadable.any() and pd.notna(note.iloc[row])  # a date in another format
                else "an unreadable time" if unreadable.any()
                else f"a number that is {note.iloc[row]}" if pd.notna(note.iloc[row])
                else "a number among dates (one format per column)" if num.isna().any() else "an out-of-range time")
        raise ValueError(f"{origin}: column {name!r} holds {what}: {col.iloc[row]!r} at data row {row + 1} "
                         "(expected ISO 8601 dates/times, YYYYMMDD, or Unix epochs in one unit); "
                         f"{int(ts.isna().sum())} bad value(s)")
    return ts
