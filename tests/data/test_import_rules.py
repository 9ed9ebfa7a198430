"""Row rules of the import schema from the audit: epoch units, future/ancient times, duplicates, text folding."""

from __future__ import annotations

import pandas as pd
import pytest

from features.schema import EVENTS, IDENTITY_RECORDS, PROFILES, TimeOptions, validate
from features.timeparse import parse_times

NOW = TimeOptions(now=pd.Timestamp("2026-07-01", tz="UTC"))


def events(ts: list) -> pd.DataFrame:
    n = len(ts)
    return pd.DataFrame({"source": ["app"] * n, "record_id": [str(i) for i in range(n)],
                         "event_type": ["view"] * n, "item_id": ["i"] * n, "ts": ts})


def test_seconds_among_milliseconds_are_rejected_naming_the_unit():
    res = validate(events(["1760000000000", "1760000001000", "1760000002"]), EVENTS, "e.csv", NOW)
    assert len(res.accepted) == 2 and res.accepted["ts"].min().year == 2025
    assert res.rejects["_reason"].tolist()[0].startswith("ts: not an epoch in milliseconds")
    assert "seconds" in res.rejects["_reason"][0]


def test_parse_times_names_the_unit_for_evaluate_readers():
    with pytest.raises(ValueError, match=r"'ts'.*not an epoch in milliseconds.*'1760000002'.*data row 3"):
        parse_times(pd.Series(["1760000000000", "1760000001000", "1760000002"]), "tx.csv", "ts")


def test_future_and_epoch_zero_times_are_rejected_per_row():
    res = validate(events(["2026-06-30", "2026-07-01 23:00", "2099-01-01", "1900-01-01", "1970-01-01"]),
                   EVENTS, "e.csv", NOW)
    assert len(res.accepted) == 2  # up to now + 1 day is fine (clock skew, time zones)
    reasons = res.rejects["_reason"].str.split(": ").str[1].tolist()
    assert reasons == ["time_in_future (after 2026-07-02 00:00 UTC)"] + ["time_too_old (before 1970-01-02)"] * 2
    epochs = validate(events([0, 1_760_000_000]), EVENTS, "e.csv", NOW)  # an epoch-zero placeholder
    assert epochs.reasons == {"ts": 1} and "time_too_old" in epochs.rejects["_reason"][0]


def test_birth_years_are_not_event_times():
    df = pd.DataFrame({"source": ["crm"], "record_id": ["1"], "birth_year": ["1930"], "gender": ["f"],
                       "observed_at": ["2026-01-01"]})
    res = validate(df, PROFILES, "p.csv", NOW)
    assert len(res.rejects) == 0 and res.accepted["gender"][0] == "F"


def test_a_rejected_row_does_not_make_a_later_good_row_a_duplicate():
    df = pd.DataFrame({"source": ["crm", "crm"], "record_id": ["1", "1"], "phone": ["139", "138"],
                       "observed_at": ["not a date", "2026-01-01"]})
    res = validate(df, IDENTITY_RECORDS, "i.csv", NOW)
    assert res.accepted["phone"].tolist() == ["138"]
    assert res.rejects["_reason"].tolist() == ["observed_at: not a valid timestamp: not a date"]


def test_full_width_identifiers_are_folded():
    df = pd.DataFrame({"source": ["ｃｒｍ"], "record_id": ["１０１"], "phone": ["１３９１２３４５６７８"],
                       "email": ["ａ＠ｂ.com"], "observed_at": ["2026-01-01"]})
    row = validate(df, IDENTITY_RECORDS, "i.csv", NOW).accepted.iloc[0]
    assert (row["source"], row["record_id"], row["phone"], row["email"]) == ("crm", "101", "13912345678", "a@b.com")
