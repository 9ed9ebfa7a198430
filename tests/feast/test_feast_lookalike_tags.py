"""``lookalike_audiences`` in Feast's predicted_tags: filled from saved lookalike audiences, merged with scores.

Real Feast (SQLite online store, DuckDB offline store) on the small sample table. Checked: a
lookalike audience tags its expanded members (not seeds, not rule audiences) and keeps their
churn/LTV scores online and offline; a later score write-back (the serving write-back's own
push) keeps the tag; replacing or deleting an audience takes its name off customers it no
longer lists; the offline file stays point-in-time correct.
"""

from __future__ import annotations

import pandas as pd
import pytest

from features.audience import AudienceStore
from features.audience_tags import lookalike_memberships, sync_lookalike_tags
from features.store import open_store

# recent: the CLI syncs at the real now, and scores older than the view's 30-day TTL are not carried
T0 = pd.Timestamp.now(tz="UTC").floor("h") - pd.Timedelta(days=1)
FEATURES = ["predicted_tags:churn_risk", "predicted_tags:churn_tier", "predicted_tags:ltv",
            "predicted_tags:lookalike_audiences", "predicted_tags:model_version"]
IDS = ["c0000001", "c0000002", "c0000003", "c0000005", "c0000009"]


@pytest.fixture(scope="module")
def world(feast_data, snap):
    store = open_store(feast_data)
    store.apply()
    store.materialize(snap.end)
    return store, AudienceStore(feast_data / "audiences")


def _online(store, ids=IDS) -> pd.DataFrame:
    got = store.fs.get_online_features(features=FEATURES, entity_rows=[{"one_id": i} for i in ids]).to_dict()
    return pd.DataFrame(got).set_index("one_id")


def _offline(store, ids, at) -> pd.DataFrame:
    entity = pd.DataFrame({"one_id": ids, "event_timestamp": pd.Timestamp(at)})
    return store.fs.get_historical_features(entity_df=entity, features=FEATURES).to_df().set_index("one_id")


def _lookalike(audiences, name, ids) -> None:
    members = pd.DataFrame({"one_id": ids, "score": [0.9] * len(ids), "percentile": [99.0] * len(ids)})
    audiences.save_members(name, members, source="lookalike", lineage={"seed_audience": "seed"}, overwrite=True)


def test_a_lookalike_audience_tags_its_members_and_keeps_their_scores(world) -> None:
    store, audiences = world
    scores = pd.DataFrame({"one_id": IDS[:3], "churn_risk": [0.9, 0.5, 0.1], "churn_tier": ["high", "mid", "low"],
                           "ltv": [120.0, 80.0, 5.0], "model_name": "churn,ltv", "model_version": "churn=3;ltv=2",
                           "scored_at": T0})
    assert store.push_predicted_tags(scores) == 3
    audiences.save_members("seed", pd.DataFrame({"one_id": ["c0000009"]}), source="ids")  # a seed: no tag
    audiences.create_ids("vip_list", ["c0000003"])  # not a lookalike audience: no tag
    _lookalike(audiences, "zz_lal", ["c0000001", "c0000002", "c0000005"])
    _lookalike(audiences, "aa_lal", ["c0000002"])
    result = sync_lookalike_tags(audiences, store, now=T0 + pd.Timedelta(hours=1))
    assert (result.changed, result.tagged, result.audiences) == (3, 3, ("aa_lal", "zz_lal"))

    online = _online(store)
    assert online["lookalike_audiences"].tolist() == ["zz_lal", "aa_lal,zz_lal", None, "zz_lal", None]
    assert online["churn_risk"].tolist()[:3] == [0.9, 0.5, 0.1]  # the scores written before are kept
    assert online["ltv"].tolist()[:3] == [120.0, 80.0, 5.0] and online["churn_tier"].tolist()[:3] == ["high", "mid", "low"]
    assert pd.isna(online.loc["c0000005", "churn_risk"])  # a member never scored: the tag alone
    assert online.loc["c0000001", "model_version"] == "churn=3;ltv=2"

    after = _offline(store, IDS, T0 + pd.Timedelta(hours=2))
    assert after.loc["c0000002", "lookalike_audiences"] == "aa_lal,zz_lal" and after.loc["c0000002", "ltv"] == 80.0
    before = _offline(store, IDS, T0 + pd.Timedelta(minutes=30))  # point in time: the tag did not exist yet
    assert before["lookalike_audiences"].isna().all() and before.loc["c0000001", "churn_risk"] == 0.9
    assert sync_lookalike_tags(audiences, store).changed == 0  # nothing changed: nothing written


def test_a_later_score_write_back_keeps_the_tag(world) -> None:
    from serving.writeback import HISTORY_COLUMNS, push_to_feast

    store, _ = world
    # a churn batch stamped before the tag was written (scoring started earlier) still keeps it
    history = pd.DataFrame({"one_id": ["c0000001", "c0000002"], "tag": "churn_tier", "value": ["low", "high"],
                            "score": [0.2, 0.95], "model": "churn", "version": "4", "date": "2026-05-02",
                            "scored_at": T0 + pd.Timedelta(minutes=50)}, columns=HISTORY_COLUMNS)
    assert push_to_feast(store.cfg.data_dir, history).startswith("pushed 2 rows")
    store.fs.refresh_registry()
    online = _online(store, ["c0000001", "c0000002"])
    assert online["churn_risk"].tolist() == [0.2, 0.95] and online["churn_tier"].tolist() == ["low", "high"]
    assert online["lookalike_audiences"].tolist() == ["zz_lal", "aa_lal,zz_lal"]
    assert online["ltv"].tolist() == [120.0, 80.0]  # the churn batch carries no LTV column: kept too
    latest = store.latest_predicted(["c0000001"]).iloc[0]
    assert latest["lookalike_audiences"] == "zz_lal" and latest["churn_risk"] == 0.2
    assert latest["event_timestamp"] > T0 + pd.Timedelta(hours=1)  # newer than the tag's row: it wins
    assert latest["scored_at"] == T0 + pd.Timedelta(minutes=50)


def test_replacing_and_deleting_take_the_name_off_former_members(world) -> None:
    store, audiences = world
    _lookalike(audiences, "zz_lal", ["c0000005"])  # re-expanded (--replace): c0000001/2 no longer found
    result = sync_lookalike_tags(audiences, store, now=T0 + pd.Timedelta(hours=3))
    assert (result.changed, result.cleared) == (2, 1)
    online = _online(store)
    assert online["lookalike_audiences"].tolist() == [None, "aa_lal", None, "zz_lal", None]
    assert online.loc["c0000001", "churn_risk"] == 0.2  # losing the tag keeps the scores

    audiences.delete("aa_lal")
    assert sync_lookalike_tags(audiences, store, now=T0 + pd.Timedelta(hours=4)).cleared == 1
    online = _online(store)
    assert online["lookalike_audiences"].tolist() == [None, None, None, "zz_lal", None]
    assert online.loc["c0000002", "churn_risk"] == 0.95 and online.loc["c0000002", "ltv"] == 80.0
    at = _offline(store, ["c0000002"], T0 + pd.Timedelta(hours=3, minutes=30))
    assert at["lookalike_audiences"].tolist() == ["aa_lal"]  # the offline history keeps the state at each time
    assert _offline(store, ["c0000002"], T0 + pd.Timedelta(hours=5))["lookalike_audiences"].isna().all()
    assert lookalike_memberships(audiences)[0].to_dict() == {"c0000005": "zz_lal"}


def test_bad_predicted_tag_writes_are_clear_errors(world) -> None:
    store, _ = world
    with pytest.raises(ValueError, match="more than once"):
        store.push_predicted_tags(pd.DataFrame({"one_id": ["c1", "c1"], "lookalike_audiences": ["a", "b"],
                                                "event_timestamp": T0}))
    with pytest.raises(ValueError, match="scored_at"):
        store.push_predicted_tags(pd.DataFrame({"one_id": ["c1"], "lookalike_audiences": ["a"]}))
    with pytest.raises(ValueError, match="'churn_risk' does not hold float64"):
        store.push_predicted_tags(pd.DataFrame({"one_id": ["c1"], "churn_risk": ["high"], "scored_at": T0}))


def test_cli_delete_and_sync_tags_keep_feast_in_line(world, feast_data, monkeypatch) -> None:
    from typer.testing import CliRunner

    from portrait.cli import app

    store, audiences = world
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(feast_data))
    monkeypatch.delenv("PORTRAIT_REDIS", raising=False)
    runner = CliRunner()
    res = runner.invoke(app, ["audience", "delete", "zz_lal"])
    assert res.exit_code == 0, res.output
    assert "1 customer(s) updated (1 cleared)" in res.output
    # never scored: its row is now all null, which Feast's push alone would not write
    assert pd.isna(_online(store, ["c0000005"]).loc["c0000005", "lookalike_audiences"])
    _lookalike(audiences, "copied_in", ["c0000003"])  # files put there by hand: the command catches up
    res = runner.invoke(app, ["audience", "sync-tags"])
    assert res.exit_code == 0 and "1 customer(s) updated" in res.output, res.output
    online = _online(store, ["c0000003"])
    assert online.loc["c0000003", "lookalike_audiences"] == "copied_in" and online.loc["c0000003", "churn_risk"] == 0.1
    res = runner.invoke(app, ["audience", "create", "copied_in", "--ids", str(_ids_file(feast_data)), "--replace"])
    assert res.exit_code == 0, res.output  # now an id list: not a lookalike audience any more
    assert pd.isna(_online(store, ["c0000003"]).loc["c0000003", "lookalike_audiences"])


def test_cli_sync_tags_without_a_feature_store_is_an_error(tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from portrait.cli import app

    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_path))
    res = CliRunner().invoke(app, ["audience", "sync-tags"])
    assert res.exit_code == 2 and "portrait features apply" in res.output


def _ids_file(root):
    path = root / "ids.txt"
    path.write_text("c0000003\n")
    return path
