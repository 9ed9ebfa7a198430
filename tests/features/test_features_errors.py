"""Bad input: errors name the file and the column; nothing is written."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.build import build, parse_cutoffs
from features.schema import SchemaError


def test_missing_column_names_file_and_column(tmp_path, h):
    w = h.World(tmp_path / "data")
    w.event("p1", "view", h.ago(1))
    raw, ident = w.write()
    pd.read_parquet(raw / "events.parquet").drop(columns=["event_type"]).to_parquet(raw / "events.parquet")
    with pytest.raises(SchemaError, match=r"events\.parquet.*'event_type'"):
        build(raw, ident, tmp_path / "features", [h.CUTOFF])
    assert not (tmp_path / "features" / "customer_features.parquet").exists()


def test_missing_record_map_and_unreadable_file(tmp_path, h):
    w = h.World(tmp_path / "data")
    w.event("p1", "view", h.ago(1))
    raw, ident = w.write()
    (ident / "record_map.parquet").unlink()
    with pytest.raises(SchemaError, match=r"record_map\.parquet.*identity resolve"):
        build(raw, ident, tmp_path / "features", [h.CUTOFF])
    w.write()
    (raw / "orders.parquet").write_text("not parquet")
    with pytest.raises(SchemaError, match=r"orders\.parquet: cannot be read"):
        build(raw, ident, tmp_path / "features", [h.CUTOFF])


def test_bad_cutoff_text():
    with pytest.raises(SchemaError, match="not a date.*'2026-13-45'"):
        parse_cutoffs("2026-06-01,2026-13-45")
    assert parse_cutoffs(" 2026-07-01 , 2026-06-01,2026-07-01") == [
        pd.Timestamp("2026-06-01", tz="UTC"), pd.Timestamp("2026-07-01", tz="UTC")]


def test_cli_reports_bad_input_with_exit_2(tmp_settings, monkeypatch):
    from portrait.cli import app

    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_settings.data_dir))
    r = CliRunner().invoke(app, ["features", "build", "--as-of", "yesterday-ish"])
    assert r.exit_code == 2 and "yesterday-ish" in r.output
    r = CliRunner().invoke(app, ["features", "build", "--as-of", "2026-06-01"])
    assert r.exit_code == 2 and "record_map.parquet" in r.output.replace("\n", "")


def test_tag_config_file(tmp_path, tmp_settings, monkeypatch, h):
    from portrait.cli import app

    w = h.World(tmp_settings.data_dir)
    w.person("p1", first_seen=h.ago(400))
    w.event("p1", "view", h.ago(40))
    w.write()
    monkeypatch.setenv("PORTRAIT_DATA_DIR", str(tmp_settings.data_dir))
    cfg = tmp_path / "tags.yaml"
    cfg.write_text("active_days: 45\n")
    r = CliRunner().invoke(app, ["features", "build", "--as-of", "2026-06-01", "--tag-config", str(cfg)])
    assert r.exit_code == 0, r.output
    cust = pd.read_parquet(tmp_settings.features_dir / "customer_features.parquet")
    assert cust["tag_lifecycle_stage"].tolist() == ["active"]  # 40 days: dormant by default, active with 45
    cfg.write_text("dormant_dayz: 10\n")
    r = CliRunner().invoke(app, ["features", "build", "--tag-config", str(cfg)])
    assert r.exit_code == 2 and "dormant_dayz" in r.output


def test_wrong_column_type_names_file_column_and_type(tmp_path, h):
    w = h.World(tmp_path / "data")
    w.order("p1", h.ago(1), 10.0)
    raw, ident = w.write()
    od = pd.read_parquet(raw / "orders.parquet")
    od["ts"] = od["ts"].astype(str)
    od.to_parquet(raw / "orders.parquet")
    with pytest.raises(SchemaError, match=r"orders\.parquet: column 'ts' has type VARCHAR"):
        build(raw, ident, tmp_path / "features", [h.CUTOFF])
