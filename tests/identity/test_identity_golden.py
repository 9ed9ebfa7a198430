"""Golden-record survivorship: source priority per attribute, then the most recent record."""

from __future__ import annotations

import pandas as pd

from features.identity.hashing import record_key
from features.identity.tables import read_identity_table


def _profiles(rows):
    df = pd.DataFrame(rows)
    df["rkey"] = [record_key(s, r) for s, r in zip(df["source"], df["record_id"])]
    df["observed_at"] = pd.to_datetime(df["observed_at"]).to_numpy().astype("datetime64[us]")
    return df


def test_source_priority_then_most_recent(run):
    ids = [{"source": s, "record_id": r, "phone": "13900000001", "observed_at": t}
           for s, r, t in [("crm", "c1", "2025-01-01"), ("app", "a1", "2026-01-01"), ("app", "a2", "2026-03-01"),
                           ("web", "w1", "2026-05-01")]]
    prof = _profiles([
        {"source": "crm", "record_id": "c1", "city": None, "gender": "F", "birth_year": 1990, "observed_at": "2025-01-01"},
        {"source": "app", "record_id": "a1", "city": "Beijing", "gender": "M", "birth_year": None, "observed_at": "2026-01-01"},
        {"source": "app", "record_id": "a2", "city": "Shanghai", "gender": None, "birth_year": 1985, "observed_at": "2026-03-01"},
        {"source": "web", "record_id": "w1", "city": "Wuhan", "occupation": "teacher", "observed_at": "2026-05-01"},
    ])
    run(ids, profiles=prof)
    g = read_identity_table(run.identity_dir, "golden").to_pandas()
    assert len(g) == 1
    row = g.iloc[0]
    assert row["gender"] == "F"  # crm outranks app
    assert row["birth_year"] == 1990  # crm has it
    assert row["city"] == "Shanghai"  # crm has none: app, most recent app record
    assert row["occupation"] == "teacher"  # only web has it
    assert row["n_records"] == 4 and row["sources"] == "app,crm,web"
    assert str(row["first_seen"])[:10] == "2025-01-01" and str(row["last_seen"])[:10] == "2026-05-01"


def test_incremental_run_updates_the_golden_record(run):
    base = [{"source": "app", "record_id": "a1", "phone": "13900000001", "observed_at": "2026-01-01"},
            {"source": "web", "record_id": "w1", "email": "x@qq.com", "observed_at": "2026-01-01"}]
    run(base, profiles=_profiles([{"source": "app", "record_id": "a1", "city": "Beijing", "observed_at": "2026-01-01"}]))
    new = [{"source": "crm", "record_id": "c1", "phone": "13900000001", "member_id": "M1", "observed_at": "2026-02-01"}]
    run(new, incremental=True,
        profiles=_profiles([{"source": "crm", "record_id": "c1", "city": "Hangzhou", "gender": "F", "observed_at": "2026-02-01"}]))
    g = read_identity_table(run.identity_dir, "golden").to_pandas().set_index("one_id")
    person = run.record_map()["crm:c1"]
    assert person == run.record_map()["app:a1"] and len(g) == 2
    assert g.loc[person, "city"] == "Hangzhou" and g.loc[person, "gender"] == "F"
    assert g.loc[person, "n_records"] == 2 and g.loc[person, "sources"] == "app,crm"
    assert g.loc[run.record_map()["web:w1"], "n_records"] == 1
