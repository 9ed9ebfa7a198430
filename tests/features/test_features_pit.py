"""Point-in-time correctness: nothing at or after the cutoff may change a feature or a tag."""

from __future__ import annotations

import pandas as pd


def _plant_future(w, h) -> None:
    after = [h.CUTOFF, h.CUTOFF + pd.Timedelta(microseconds=1), h.CUTOFF + pd.Timedelta(days=3)]
    for i, pid in enumerate(sorted(w.people)[:40]):
        ts = after[i % 3]
        for t in ("view", "click", "search", "add_to_cart", "purchase", "favorite"):
            w.event(pid, t, ts, item="I2", session=f"s_{pid}_{i % 2}" if i % 2 else None, channel="web")
        w.order(pid, ts, 999.0, items=("I2", "I3"), discount=50.0, coupon=True)
    w.event("late_joiner", "view", h.CUTOFF + pd.Timedelta(days=1))
    w.order("late_joiner", h.CUTOFF + pd.Timedelta(days=2), 10.0)


def test_facts_after_the_cutoff_change_no_feature_or_tag(tmp_path, h):
    cutoffs = (h.CUTOFF - pd.Timedelta(days=45), h.CUTOFF)
    w = h.random_world(tmp_path / "data", n_people=80, seed=3)
    before_c, before_i = h.compute(*w.write(), cutoffs=cutoffs)
    assert len(before_c) > 80 and before_c["tag_lifecycle_stage"].nunique() >= 3  # a real population
    _plant_future(w, h)
    after_c, after_i = h.compute(*w.write(), cutoffs=cutoffs)
    pd.testing.assert_frame_equal(before_c, after_c)
    pd.testing.assert_frame_equal(before_i, after_i)
    assert "late_joiner" not in set(after_c["one_id"])


def test_the_same_check_sees_a_fact_just_before_the_cutoff(tmp_path, h):
    """Guards the test above: a fact 1 µs before the cutoff must change features and tags."""
    w = h.random_world(tmp_path / "data", n_people=20, seed=4)
    before, _ = h.compute(*w.write())
    pid = sorted(w.people)[0]
    w.order(pid, h.CUTOFF - pd.Timedelta(microseconds=1), 500.0)
    after, _ = h.compute(*w.write())
    b, a = before.set_index("one_id").loc[pid], after.set_index("one_id").loc[pid]
    assert a["frequency_30d"] == b["frequency_30d"] + 1
    assert a["recency_days"] < 1e-6
    assert a["tag_lifecycle_stage"] == "active"


def test_campaign_response_after_the_cutoff_is_not_counted(tmp_path, h):
    w = h.World(tmp_path / "data")
    w.order("p1", h.ago(10), 10.0)
    raw, ident = w.write()
    contacts = pd.DataFrame({
        "campaign_id": ["c1", "c2", "c3"], "source": "app", "record_id": "r_p1", "channel": "sms",
        "sent_at": [h.ago(20), h.ago(5), h.CUTOFF + pd.Timedelta(days=1)],
        "responded_at": [h.ago(18), h.CUTOFF + pd.Timedelta(hours=1), pd.NaT], "converted": [True, True, False],
    })
    for c in ("sent_at", "responded_at"):
        contacts[c] = pd.to_datetime(contacts[c], utc=True).astype("datetime64[us, UTC]")
    contacts.to_parquet(raw / "campaign_contacts.parquet", index=False)
    cust, _ = h.compute(raw, ident)
    row = cust.set_index("one_id").loc["p1"]
    assert row["campaign_contacts_365d"] == 2
    assert row["campaign_responses_365d"] == 1


def test_items_launched_after_the_cutoff_are_absent(tmp_path, h):
    w = h.random_world(tmp_path / "data", n_people=10, seed=5)
    _, item = h.compute(*w.write())
    assert "I4" not in set(item["item_id"])  # launched 2026-07-01, after the cutoff
    assert {"I1", "I2", "I3"} <= set(item["item_id"])


def test_a_snapshot_does_not_depend_on_the_other_cutoffs_built_with_it(tmp_path, h):
    w = h.random_world(tmp_path / "data", n_people=40, seed=9)
    raw, ident = w.write()
    early = h.CUTOFF - pd.Timedelta(days=60)
    alone, _ = h.compute(raw, ident, cutoffs=(early,), categories=["books", "shoes"])
    together, _ = h.compute(raw, ident, cutoffs=(early, h.CUTOFF), categories=["books", "shoes"])
    same = together[together["event_timestamp"] == early].reset_index(drop=True)
    pd.testing.assert_frame_equal(alone, same)
