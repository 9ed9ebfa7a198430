"""`portrait features materialize` after `portrait features build` serves the new snapshot.

A snapshot's rows carry its cutoff, a past date, so Feast's incremental window (rows stamped after
the previous run) skipped every snapshot built after the first materialize: the command reported
success and the online store kept the old values.
"""

from __future__ import annotations

import json
import pandas as pd
from typer.testing import CliRunner

from portrait.cli import app


def _online(runner, one_id: str) -> dict:
    res = runner.invoke(app, ["features", "online", one_id, "--service", "ltv_v1", "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout[res.stdout.index("{"):])


def test_materialize_after_a_rebuild_serves_the_rebuilt_snapshot(feast_data, monkeypatch):
    from features.io import write_parquet

    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(feast_data))
    monkeypatch.delenv("PORTRAIT_REDIS", raising=False)
    runner = CliRunner()
    for args in (["features", "apply"], ["features", "materialize"]):
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
    path = feast_data / "features" / "customer_features.parquet"
    table = pd.read_parquet(path)
    first = table["one_id"].iloc[0]
    assert _online(runner, first)["monetary_90d"][0] != 4321.0
    # a daily build adds a snapshot at a later (still past) cutoff
    new = table[table["event_timestamp"] == table["event_timestamp"].max()].copy()
    new["event_timestamp"] = new["event_timestamp"] + pd.Timedelta(days=14)
    new["monetary_90d"] = 4321.0
    both = pd.concat([table, new], ignore_index=True)
    both["event_timestamp"] = both["event_timestamp"].astype("datetime64[us, UTC]")  # as the build writes it
    write_parquet(both, path)
    res = runner.invoke(app, ["features", "materialize"])
    assert res.exit_code == 0, res.output
    assert _online(runner, first)["monetary_90d"][0] == 4321.0
    assert "customer_features, customer_tags: snapshot rebuilt" in res.output
    # nothing rebuilt since: a plain incremental run, no note
    res = runner.invoke(app, ["features", "materialize"])
    assert res.exit_code == 0 and "rebuilt" not in res.output, res.output
