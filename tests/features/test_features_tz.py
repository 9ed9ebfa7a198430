"""`features build --tz`: hour-of-day and weekend features on the brand's wall clock.

Times are stored in UTC; a Shanghai shop's 21:30 orders are 13:30 UTC, so without a zone its night
shoppers were "afternoon" and tag_night_owl went to whoever shopped 05:00-14:00 local.
"""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.build import FeatureConfig, build
from features.schema import SchemaError


def _world(tmp_path, h):
    w = h.World(tmp_path / "data")
    for d in range(1, 13):  # 21:30 in Shanghai every day = 13:30 UTC
        w.event("p1", "view", h.ago(d, hour=13) + pd.Timedelta(minutes=30))
    w.order("p1", h.ago(3, hour=13), 10.0)
    return w.write()


def test_hour_shares_and_night_owl_follow_the_zone(tmp_path, h):
    raw, ident = _world(tmp_path, h)
    utc = build(raw, ident, tmp_path / "utc", [h.CUTOFF])
    local = build(raw, ident, tmp_path / "sh", [h.CUTOFF], FeatureConfig(tz="Asia/Shanghai"))
    a = pd.read_parquet(utc.paths["customer_features"]).iloc[0]
    b = pd.read_parquet(local.paths["customer_features"]).iloc[0]
    assert a["afternoon_share"] == 1.0 and a["night_share"] == 0.0 and not a["tag_night_owl"]
    assert b["night_share"] == 1.0 and b["afternoon_share"] == 0.0 and b["tag_night_owl"]


def test_bad_zone_and_a_zone_change_under_append_are_one_line_errors(tmp_path, h, monkeypatch):
    from portrait.cli import app

    _world(tmp_path, h)
    with pytest.raises(SchemaError, match="--tz: unknown time zone 'Shanghai'"):
        FeatureConfig(tz="Shanghai")
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_path / "data"))
    cli = CliRunner()
    assert cli.invoke(app, ["features", "build", "--as-of", "2026-06-01", "--tz", "Asia/Shanghai"]).exit_code == 0
    before = (tmp_path / "data" / "features" / "customer_features.parquet").read_bytes()
    r = cli.invoke(app, ["features", "build", "--as-of", "2026-05-31", "--append"])
    assert r.exit_code == 2 and "--tz Asia/Shanghai" in " ".join(r.output.split()), r.output
    assert (tmp_path / "data" / "features" / "customer_features.parquet").read_bytes() == before
    r = cli.invoke(app, ["features", "build", "--as-of", "2026-05-31", "--append", "--tz", "Asia/Shanghai"])
    assert r.exit_code == 0, r.output
